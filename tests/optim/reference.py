"""Closed-form reference rules from ALGORITHMS.md, written plainly (one tensor at a time).

Independent of optim/: per-element math exactly as the document states, in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Grad = Callable[[int, list[Tensor]], list[Tensor]]


def avagrad(
    params,
    grad_fn: Grad,
    steps,
    lr,
    eps,
    betas=(0.9, 0.999),
    wd=0.0,
    decoupled=False,
    normalise=True,
    trace=None,
):
    """Official AvaGrad (γ per group); `normalise=False` is Delayed Adam; `decoupled` AvaGradW."""
    b1, b2 = betas
    p = [x.clone() for x in params]
    m = [torch.zeros_like(x) for x in p]
    v = [torch.zeros_like(x) for x in p]
    gamma = None
    d = sum(x.numel() for x in p)
    for t in range(1, steps + 1):
        g = grad_fn(t, p)
        if wd and not decoupled:
            g = [gi + wd * pi for gi, pi in zip(g, p, strict=True)]
        total = 0.0
        for i in range(len(p)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            s = torch.sqrt(v[i])
            if t > 1:
                if decoupled and wd:
                    p[i] = p[i] * (1 - lr * wd)
                step = (gamma if normalise else 1.0) * lr / (1 - b1**t)
                p[i] = p[i] - step * m[i] / (s / math.sqrt(1 - b2 ** (t - 1)) + eps)
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            q = s / math.sqrt(1 - b2**t) + eps
            total += (q**-2).sum().item()
        gamma = 1 / math.sqrt(total / d)
        if trace is not None:
            trace.append((t, [x.clone() for x in p], gamma))
    return p


def avagrad_paper(
    params, grad_fn: Grad, steps, lr, eps, betas=(0.9, 0.999), wd=0.0, decoupled=False
):
    """Algorithm 2: η = 1/(√v_{t−1} + ε); p −= lr·(η/(‖η‖₂/√d))·m, from t = 1."""
    b1, b2 = betas
    p = [x.clone() for x in params]
    m = [torch.zeros_like(x) for x in p]
    v = [torch.zeros_like(x) for x in p]
    d = sum(x.numel() for x in p)
    for t in range(1, steps + 1):
        g = grad_fn(t, p)
        if wd and not decoupled:
            g = [gi + wd * pi for gi, pi in zip(g, p, strict=True)]
        if wd and decoupled:
            p = [pi * (1 - lr * wd) for pi in p]
        eta = [1 / (torch.sqrt(vi) + eps) for vi in v]
        norm = math.sqrt(sum((e**2).sum().item() for e in eta))
        for i in range(len(p)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            p[i] = p[i] - lr * (eta[i] / (norm / math.sqrt(d))) * m[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
    return p


def adabelief(
    params,
    grad_fn: Grad,
    steps,
    lr,
    eps,
    betas=(0.9, 0.999),
    wd=0.0,
    decoupled=False,
    rectify=False,
):
    """adabelief-pytorch 0.2.x: s ← β2 s + (1−β2)(g−m)² + ε; optional RAdam rectification."""
    b1, b2 = betas
    p = [x.clone() for x in params]
    m = [torch.zeros_like(x) for x in p]
    s = [torch.zeros_like(x) for x in p]
    n_max = 2 / (1 - b2) - 1
    for t in range(1, steps + 1):
        g = grad_fn(t, p)
        for i in range(len(p)):
            gi = g[i]
            if wd and decoupled:
                p[i] = p[i] * (1 - lr * wd)
            elif wd:
                gi = gi + wd * p[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            s[i] = b2 * s[i] + (1 - b2) * (gi - m[i]) ** 2 + eps
            bc1, bc2 = 1 - b1**t, 1 - b2**t
            if not rectify:
                p[i] = p[i] - (lr / bc1) * m[i] / (torch.sqrt(s[i]) / math.sqrt(bc2) + eps)
                continue
            n_sma = n_max - 2 * t * b2**t / bc2
            if n_sma >= 5:
                r = math.sqrt(
                    bc2 * (n_sma - 4) / (n_max - 4) * (n_sma - 2) / n_sma * n_max / (n_max - 2)
                )
                p[i] = p[i] - lr * r / bc1 * m[i] / (torch.sqrt(s[i]) + eps)
            else:
                p[i] = p[i] - lr / bc1 * m[i]
    return p
