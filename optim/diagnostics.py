"""Mechanism diagnostics of the AvaGrad family: γ, the fraction of v = 0, and where Σq⁻² lives.

Official AvaGrad's step t reads v = v_{t−1} (its preconditioner's state), forms
q = √v / √(1 − β2^t) + ε and γ = 1/√(Σq⁻²/d) over the group's d elements, and the next step
(t + 1) multiplies its update by that γ (ALGORITHMS.md). `measure` computes γ, the fraction
of elements with v exactly 0, and each named segment's share of Σq⁻² from the state tensors
alone; `measure_optimizer` reads them from an AvaGrad, AvaGradW or DelayedAdam *before* its
next step, so the γ it reports is the one that step computes and the step after it uses.
Everything is per configuration of stacked tensors (shape [C]), computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from optim._foreach import HParam
from optim.avagrad import AvaGrad


@dataclass(frozen=True)
class Segment:
    """A named run [start, stop) of one configuration's flattened elements of tensor `tensor`."""

    name: str
    tensor: int
    start: int
    stop: int


@dataclass(frozen=True)
class Diagnostics:
    """Per-config γ, fraction of v = 0, and each segment name's share of Σq⁻² (all [C])."""

    gamma: Tensor
    zero_fraction: Tensor
    shares: dict[str, Tensor]


def whole_tensors(sizes: Sequence[int], names: Sequence[str] | None = None) -> list[Segment]:
    """One segment per tensor of `sizes` elements (per config), named `names` or p0, p1, …."""
    names = [f"p{i}" for i in range(len(sizes))] if names is None else list(names)
    if len(names) != len(sizes):
        raise ValueError(f"{len(names)} names for {len(sizes)} tensors")
    return [Segment(names[i], i, 0, size) for i, size in enumerate(sizes)]


def measure(
    exp_avg_sqs: Sequence[Tensor],
    *,
    step: int,
    eps: HParam,
    beta2: float,
    segments: Sequence[Segment] | None = None,
    bias_correction: bool = True,
) -> Diagnostics:
    """γ, fraction of v = 0 and segment shares of Σq⁻² for stacked v tensors [C, ...].

    q = √v / √(1 − β2^step) + ε (`bias_correction=False`: q = √v + ε, AvaGrad's paper
    variant). `eps` is a float or one value per config. Segments default to whole tensors
    p0, p1, …; segments with one name add up. ε = 0 with some v = 0 gives γ = 0 and NaN shares.
    """
    if not exp_avg_sqs:
        raise ValueError("no state tensors to measure")
    flat = [v.detach().flatten(1).to(torch.float64) for v in exp_avg_sqs]
    configs = flat[0].shape[0]
    epsilons = torch.as_tensor(eps, dtype=torch.float64, device=flat[0].device)
    epsilons = epsilons.reshape(-1).expand(configs).unsqueeze(1)
    correction = (1 - beta2**step) ** -0.5 if bias_correction else 1.0
    inverse_squares = [(v.sqrt() * correction + epsilons).reciprocal().square() for v in flat]
    sums = [part.sum(1) for part in inverse_squares]
    total = torch.stack(sums).sum(0)
    elements = sum(v.shape[1] for v in flat)
    zeros = torch.stack([(v == 0).sum(1) for v in flat]).sum(0).to(torch.float64)
    if segments is None:
        segments = whole_tensors([v.shape[1] for v in flat])
    shares: dict[str, Tensor] = {}
    for segment in segments:
        if not (0 <= segment.tensor < len(flat)):
            raise ValueError(f"segment {segment.name!r} names tensor {segment.tensor}")
        if not (0 <= segment.start <= segment.stop <= flat[segment.tensor].shape[1]):
            raise ValueError(f"segment {segment.name!r} lies outside its tensor")
        part = inverse_squares[segment.tensor][:, segment.start : segment.stop].sum(1)
        shares[segment.name] = shares.get(segment.name, 0) + part / total
    return Diagnostics(
        gamma=torch.rsqrt(total / elements),
        zero_fraction=zeros / elements,
        shares=shares,
    )


def supports(optimizer: Any) -> bool:
    """Whether `measure_optimizer` describes `optimizer`: AvaGrad, AvaGradW, DelayedAdam."""
    return isinstance(optimizer, AvaGrad)


def measure_optimizer(optimizer: Any, segments: Sequence[Segment] | None = None) -> Diagnostics:
    """Diagnostics of the step `optimizer` takes next, from its state (before that step).

    Official AvaGrad: γ is what that step computes and the step after it uses. Paper variant:
    the γ that step itself applies (1/RMS of η = 1/(√v + ε)). DelayedAdam always uses γ ≡ 1:
    its γ here is what AvaGrad's normaliser *would* be on the same state. Before the first
    step v = 0. One param group; tensors without a gradient are outside the step's scope,
    and so are segments on them. `segments` index the group's tensors, per config.
    """
    if not supports(optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not in the AvaGrad family")
    if len(optimizer.param_groups) != 1:
        raise ValueError("diagnostics need an optimizer with one param group")
    group = optimizer.param_groups[0]
    kept: dict[int, int] = {}
    states: list[Tensor] = []
    for index, p in enumerate(group["params"]):
        if p.grad is None:
            continue
        kept[index] = len(states)
        state = optimizer.state[p].get("exp_avg_sq")
        v = torch.zeros_like(p) if state is None else state
        states.append(v if optimizer.stacked else v.unsqueeze(0))
    if segments is None:
        per_config = [p[0] if optimizer.stacked else p for p in group["params"]]
        segments = whole_tensors([p.numel() for p in per_config])
    moved = [Segment(s.name, kept[s.tensor], s.start, s.stop) for s in segments if s.tensor in kept]
    return measure(
        states,
        step=group["step"] + 1,
        eps=group["eps"],
        beta2=group["betas"][1],
        segments=moved,
        bias_correction=group["variant"] != "paper",
    )
