"""The stacked RAdam rule equals torch.optim.RAdam per configuration, in O(tensors) launches."""

from __future__ import annotations

import pytest
import torch

from optim import get_optimizer
from optim.radam import RAdam, rectification
from tests.optim.helpers import grad_fn, make_params

LRS = [1e-3, 3e-2, 0.1]
EPSS = [1e-8, 1e-3, 0.1]
# β2 = 0.9 turns rectification on at step 3; β2 = 0.999 only at step 6
SETTINGS = [
    pytest.param(dict(), id="defaults"),
    pytest.param(dict(betas=(0.8, 0.9)), id="betas"),
    pytest.param(dict(betas=(0.85, 0.95), weight_decay=0.05), id="l2"),
    pytest.param(
        dict(betas=(0.9, 0.9), weight_decay=0.1, decoupled_weight_decay=True), id="decoupled"
    ),
]
STEPS = 12


def _torch_alone(params, lr: float, eps: float, settings: dict) -> list[torch.Tensor]:
    ps = [p.clone().requires_grad_(True) for p in params]
    optimizer = torch.optim.RAdam(ps, lr=lr, eps=eps, **settings)
    grad = grad_fn()
    history = []
    for t in range(1, STEPS + 1):
        for p, g in zip(ps, grad(t, [p.detach() for p in ps]), strict=True):
            p.grad = g
        optimizer.step()
        history.append([p.detach().clone() for p in ps])
    return history


def _stacked(params, settings: dict) -> list[list[torch.Tensor]]:
    c = len(LRS)
    ps = [p.unsqueeze(0).repeat(c, *([1] * p.dim())).requires_grad_(True) for p in params]
    lr = torch.tensor(LRS, dtype=torch.float64)
    eps = torch.tensor(EPSS, dtype=torch.float64)
    optimizer = get_optimizer("radam", ps, lr=lr, eps=eps, stacked=True, **settings)
    assert isinstance(optimizer, RAdam)
    grad = grad_fn()
    history = []
    for t in range(1, STEPS + 1):
        per_config = [grad(t, [p.detach()[k] for p in ps]) for k in range(c)]
        for i, p in enumerate(ps):
            p.grad = torch.stack([g[i] for g in per_config])
        optimizer.step()
        history.append([p.detach().clone() for p in ps])
    return history


@pytest.mark.parametrize("settings", SETTINGS)
def test_stacked_radam_equals_torch_per_config(settings: dict) -> None:
    params = make_params()
    stacked = _stacked(params, settings)
    for k, (lr, eps) in enumerate(zip(LRS, EPSS, strict=True)):
        alone = _torch_alone(params, lr, eps, settings)
        for t, (want, have) in enumerate(zip(alone, stacked, strict=True), start=1):
            for a, b in zip(want, have, strict=True):
                torch.testing.assert_close(
                    b[k], a, rtol=1e-12, atol=1e-14, msg=lambda m, t=t, k=k: f"step {t}, c {k}: {m}"
                )


def test_rectification_switches_on_when_rho_exceeds_five() -> None:
    early = [rectification(t, 0.999) for t in range(1, 6)]
    assert all(adaptive == 0.0 and plain == 1.0 for adaptive, plain in early)
    adaptive, plain = rectification(6, 0.999)
    assert adaptive > 0 and plain == 0.0
    tensor_adaptive, tensor_plain = rectification(torch.tensor(6.0, dtype=torch.float64), 0.999)
    assert float(tensor_plain) == 0.0
    assert float(tensor_adaptive) == pytest.approx(adaptive, rel=1e-12)
    tensor_early = rectification(torch.tensor(3.0, dtype=torch.float64), 0.999)
    assert [float(v) for v in tensor_early] == [0.0, 1.0]


def test_launches_do_not_grow_with_configs() -> None:
    """One step over C = 2 and C = 16 dispatches the same number of kernels."""

    def kernels(c: int) -> int:
        ps = [torch.randn(c, *p.shape, dtype=torch.float64) for p in make_params()]
        for p in ps:
            p.grad = torch.randn_like(p)
        lr = torch.full((c,), 1e-2, dtype=torch.float64)
        optimizer = get_optimizer("radam", ps, lr=lr, eps=lr, stacked=True, betas=(0.9, 0.9))
        for _ in range(4):  # past the switch to the rectified step
            optimizer.step()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            optimizer.step()
        return sum(1 for e in prof.events() if e.name.startswith("aten::"))

    assert kernels(2) == kernels(16)


@pytest.mark.parametrize("settings", SETTINGS[1:])
def test_capturable_steps_equal_eager_steps(settings: dict) -> None:
    """Device-tensor step counts (the graph-safe path) pick the same branch, bit for bit."""
    params = make_params()
    eager = _stacked(params, settings)
    capturable = _stacked(params, {**settings, "capturable": True})
    for want, have in zip(eager, capturable, strict=True):
        for a, b in zip(want, have, strict=True):
            assert torch.equal(a, b)
