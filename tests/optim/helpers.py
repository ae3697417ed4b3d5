"""Shared helpers for optimizer tests: small float64 problems with step-dependent gradients."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from torch import Tensor

SHAPES = [(4, 3), (5,), (2, 3, 2)]


def make_params(seed: int = 0, shapes=SHAPES) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]


def grad_fn(seed: int = 1):
    """g_t(p) = 0.5·p + sin(p) + noise_t: depends on p (so decay matters) and on t."""

    def fn(t: int, params: list[Tensor]) -> list[Tensor]:
        gen = torch.Generator().manual_seed(seed * 100_003 + t)
        return [
            0.5 * p + torch.sin(p) + torch.randn(p.shape, generator=gen, dtype=p.dtype)
            for p in params
        ]

    return fn


def run(opt_factory, params: list[Tensor], steps: int, grad=None) -> list[Tensor]:
    """Step an optimizer built over copies of `params` with the shared gradient sequence."""
    grad = grad or grad_fn()
    ps = [p.clone().requires_grad_(True) for p in params]
    opt = opt_factory(ps)
    for t in range(1, steps + 1):
        for p, g in zip(ps, grad(t, [p.detach() for p in ps]), strict=True):
            p.grad = g
        opt.step()
    return [p.detach() for p in ps]


def run_without_compiler(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run Python `code` with no C compiler on PATH and an empty kernel cache in `tmp_path`;
    it must exit cleanly after warning that no compiler was found."""
    env = {"PATH": str(tmp_path), "AVATUNE_CACHE_DIR": str(tmp_path / "cache"), "CC": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "no C compiler found" in result.stderr
    return result
