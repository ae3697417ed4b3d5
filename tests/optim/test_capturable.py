"""capturable=True (device step and hyperparameters) steps bitwise like the eager optimizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from optim import AvaGrad
from optim.adabelief import AdaBelief
from optim.adam import StackedAdam
from optim.avagrad import AvaGradW
from optim.capturable import capture_scope, make_capturable, power
from optim.delayed_adam import DelayedAdam
from optim.fallback import PerConfigOptimizer
from optim.sgd import StackedSGD

C = 5
SHAPES = [(C, 4, 3), (C, 7), (C, 2, 3, 2)]

FACTORIES: dict[str, Callable[..., Any]] = {
    "adam": lambda ps, **kw: StackedAdam(ps, **kw),
    "adamw": lambda ps, **kw: StackedAdam(ps, weight_decay=0.1, decoupled=True, **kw),
    "amsgrad": lambda ps, **kw: StackedAdam(ps, weight_decay=0.01, amsgrad=True, **kw),
    "sgd": lambda ps, eps, **kw: StackedSGD(ps, weight_decay=0.01, **kw),
    "nesterov": lambda ps, eps, **kw: StackedSGD(ps, nesterov=True, **kw),
    "adabelief": lambda ps, **kw: AdaBelief(ps, weight_decay=0.01, **kw),
    "adabelief_rectify": lambda ps, **kw: AdaBelief(ps, rectify=True, **kw),
    "avagrad": lambda ps, **kw: AvaGrad(ps, weight_decay=0.01, **kw),
    "avagradw": lambda ps, **kw: AvaGradW(ps, weight_decay=0.1, **kw),
    "avagrad_paper": lambda ps, **kw: AvaGrad(ps, variant="paper", **kw),
    "delayed_adam": lambda ps, **kw: DelayedAdam(ps, **kw),
}


def _params(dtype: torch.dtype) -> list[Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]


def _grads(t: int, params: list[Tensor]) -> list[Tensor]:
    g = torch.Generator().manual_seed(1000 + t)
    return [
        0.5 * p + torch.sin(p) + torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params
    ]


def _train(
    name: str, dtype: torch.dtype, capturable: bool, steps: int = 12, schedule: bool = False
) -> tuple[list[Tensor], Any]:
    """Train stacked copies with per-config lr/eps; `schedule` rebinds lr each step."""
    ps = _params(dtype)
    lr = torch.tensor([1e-3, 3e-3, 1e-2, 3e-2, 0.1], dtype=dtype)
    eps = torch.tensor([1e-8, 1e-6, 1e-4, 1e-2, 1.0], dtype=dtype)
    opt = FACTORIES[name](ps, lr=lr, eps=eps, stacked=True)
    assert not capturable or make_capturable(opt)
    for t in range(1, steps + 1):
        if schedule:
            for group in opt.param_groups:
                group["lr"] = lr * (0.5 + 0.5 / t)
        for p, g in zip(ps, _grads(t, ps), strict=True):
            p.grad = g
        opt.step()
    return ps, opt


def _bits(t: Tensor) -> Tensor:
    """The tensor's bit patterns (so −0 ≠ +0 and NaNs compare by payload)."""
    return t.contiguous().view(torch.int64 if t.element_size() == 8 else torch.int32)


def _state(opt: Any) -> list[Tensor]:
    tensors = [v for s in opt.state.values() for v in s.values() if isinstance(v, Tensor)]
    gammas = [g["gamma"] for g in opt.param_groups if isinstance(g.get("gamma"), Tensor)]
    return tensors + gammas


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("schedule", [False, True])
def test_capturable_is_bitwise_eager(name: str, dtype: torch.dtype, schedule: bool) -> None:
    eager, eager_opt = _train(name, dtype, capturable=False, schedule=schedule)
    graphed, graphed_opt = _train(name, dtype, capturable=True, schedule=schedule)
    for a, b in zip(eager + _state(eager_opt), graphed + _state(graphed_opt), strict=True):
        assert torch.equal(_bits(a), _bits(b))
    assert not torch.equal(eager[0], _params(dtype)[0])


@pytest.mark.parametrize("name", ["adam", "adamw", "adabelief", "avagrad", "sgd"])
def test_capturable_python_float_hyperparameters(name: str) -> None:
    """Plain (C = 1) optimizers with float lr/eps: float64 device scalars give Python's math."""
    results = []
    for capturable in (False, True):
        ps = [p[0].clone() for p in _params(torch.float64)]
        opt = FACTORIES[name](ps, lr=0.01, eps=1e-3)
        assert not capturable or make_capturable(opt)
        for t in range(1, 8):
            for p, g in zip(ps, _grads(t, ps), strict=True):
                p.grad = g
            opt.step()
        results.append(ps)
    for a, b in zip(*results, strict=True):
        assert torch.equal(_bits(a), _bits(b))


def test_device_step_counts_with_the_host_step() -> None:
    ps = _params(torch.float32)
    opt = StackedAdam(ps, lr=torch.full((C,), 1e-3), stacked=True, capturable=True)
    for t in range(1, 8):
        for p, g in zip(ps, _grads(t, ps), strict=True):
            p.grad = g
        opt.step()
    static = opt.param_groups[0]["static"]
    assert static["step"].dtype == torch.float64
    assert static["step"].item() == 7 == opt.param_groups[0]["step"]


def test_captured_step_reads_static_lr_until_synced() -> None:
    """Inside a capture the step reads the static tensors: a rebound lr waits for the sync."""
    ps, opt = _train("sgd", torch.float64, capturable=True, steps=2)
    group = opt.param_groups[0]
    static_lr = group["lr"]
    assert static_lr is group["static"]["lr"]
    for p in ps:
        p.grad = torch.ones_like(p)
    before = ps[0].clone()
    group["lr"] = torch.zeros(C, dtype=torch.float64)
    with capture_scope():
        opt.step()
    assert not torch.equal(ps[0], before)  # the stale static lr, not the rebound zeros
    opt.sync_hyperparameters()
    assert group["lr"] is static_lr and torch.equal(static_lr, torch.zeros(C, dtype=torch.float64))
    before = ps[0].clone()
    with capture_scope():
        opt.step()
    assert torch.equal(ps[0], before)


def test_capture_needs_an_eager_step_first() -> None:
    ps = _params(torch.float32)
    opt = StackedAdam(ps, lr=torch.full((C,), 1e-3), stacked=True, capturable=True)
    for p in ps:
        p.grad = torch.ones_like(p)
    with capture_scope(), pytest.raises(RuntimeError, match="eager step"):
        opt.step()


def test_make_capturable() -> None:
    ps = _params(torch.float32)
    avagrad = AvaGrad(ps, lr=torch.full((C,), 0.1), stacked=True)
    assert not avagrad.capturable
    assert make_capturable(avagrad) and avagrad.capturable
    assert not make_capturable(torch.optim.Adam([torch.zeros(3, requires_grad=True)]))
    fallback = PerConfigOptimizer(ps, lambda groups: torch.optim.Adam(groups), {"lr": 1e-3})
    assert not make_capturable(fallback)


def test_power_matches_python_pow() -> None:
    """torch's tensor ** ±0.5 is sqrt/rsqrt, which can round differently from Python's pow."""
    for t in range(1, 3000):
        x = 1 - 0.999**t
        tensor = torch.tensor(x, dtype=torch.float64)
        assert power(tensor, -0.5).item() == x**-0.5
        assert power(tensor, 0.5).item() == x**0.5


@pytest.mark.parametrize("name", ["adam", "avagrad"])
def test_fused_capturable_compiles_once_for_every_c(name: str) -> None:
    """torch.compile'd rule over device scalars: one compilation serves C = 3, 5 and 6."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    for configs in (3, 5, 6):
        results = []
        for fused in (False, True):
            g = torch.Generator().manual_seed(configs)
            ps = [torch.randn(configs, *s[1:], generator=g, dtype=torch.float64) for s in SHAPES]
            lr = torch.linspace(1e-3, 1e-1, configs, dtype=torch.float64)
            opt = FACTORIES[name](ps, lr=lr, eps=lr / 10, stacked=True, fused=fused)
            make_capturable(opt)
            for t in range(1, 5):
                for p, grad in zip(ps, _grads(t, ps), strict=True):
                    p.grad = grad
                opt.step()
            results.append(ps)
        for a, b in zip(*results, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    # avagrad's first step (no update) is its own graph; none depends on C
    assert counters["frames"]["ok"] == (1 if name == "adam" else 2)
