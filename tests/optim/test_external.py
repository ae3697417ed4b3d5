"""Optimizers named by import path run exactly as torch.optim runs them, one config at a time."""

from __future__ import annotations

import pytest
import torch

from optim import get_optimizer, optimizer_info, uses_eps
from optim.external import import_object


def _steps(stacked: torch.Tensor, ref: list[torch.Tensor], opt, refs, steps: int = 6) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        grad = torch.randn(stacked.shape, generator=generator, dtype=stacked.dtype)
        stacked.grad = grad.clone()
        opt.step()
        for c, (p, o) in enumerate(zip(ref, refs, strict=True)):
            p.grad = grad[c].clone()
            o.step()


@pytest.mark.parametrize(
    ("path", "cls", "settings"),
    [
        ("torch.optim:NAdam", torch.optim.NAdam, {}),
        ("torch.optim:Adamax", torch.optim.Adamax, {"betas": (0.8, 0.99)}),
        ("torch.optim:Adagrad", torch.optim.Adagrad, {"lr_decay": 0.01}),
    ],
)
def test_a_path_optimizer_stacked_equals_each_config_alone(path, cls, settings) -> None:
    lr = torch.tensor([1e-3, 3e-2, 0.3], dtype=torch.float64)
    eps = torch.tensor([1e-8, 1e-4, 0.1], dtype=torch.float64)
    start = torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    stacked = start.clone().requires_grad_()
    opt = get_optimizer(path, [stacked], lr=lr, eps=eps, stacked=True, **settings)
    ref = [start[c].clone().requires_grad_() for c in range(3)]
    refs = [cls([p], lr=float(lr[c]), eps=float(eps[c]), **settings) for c, p in enumerate(ref)]
    _steps(stacked, ref, opt, refs)
    for c in range(3):
        torch.testing.assert_close(stacked.detach()[c], ref[c].detach(), rtol=0, atol=0)


def test_plain_build_and_an_optimizer_without_eps() -> None:
    p = torch.zeros(3, requires_grad=True)
    plain = get_optimizer("torch.optim:NAdam", [p], lr=0.01, eps=1e-6)
    assert isinstance(plain, torch.optim.NAdam) and plain.defaults["eps"] == 1e-6
    assert not uses_eps("torch.optim:SGD", None) and uses_eps("torch.optim:SGD", "momentum")
    sgd = get_optimizer("torch.optim:SGD", [p], lr=0.1, eps=0.5, eps_arg=None, momentum=0.9)
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["lr"] == 0.1  # ε ignored
    info = optimizer_info("torch.optim:NAdam")
    assert info.default_lr == 0.002 and info.default_eps == 1e-8 and info.cpu_kernel is None


@pytest.mark.parametrize(
    ("name", "eps_arg", "error", "message"),
    [
        ("torch.optim:NoSuch", "eps", AttributeError, "torch.optim has no attribute 'NoSuch'"),
        ("no_such_package.x:Y", "eps", ImportError, "no_such_package"),
        ("torch.nn:Linear", "eps", ValueError, "is not a torch.optim.Optimizer subclass"),
        ("torch.optim:Adamax", "epsilon", ValueError, "has no argument 'epsilon'"),
        ("lion", "eps", ValueError, "no package registers it in avatune.optimizers"),
    ],
)
def test_what_cannot_be_an_optimizer_says_why(name, eps_arg, error, message) -> None:
    with pytest.raises(error, match=message):
        optimizer_info(name, eps_arg)


def test_import_object_walks_attributes() -> None:
    assert import_object("torch.optim:Adam") is torch.optim.Adam
    assert import_object("torch:optim.Adam") is torch.optim.Adam
    with pytest.raises(ValueError, match="malformed import path"):
        import_object("torch.optim")


def test_a_registered_entry_without_a_stacked_rule_steps_through_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plugin's OptimizerInfo with `stacked=None` still trains batched: one group per config."""
    from optim import external
    from optim.registry import OptimizerInfo

    def plain(params, lr, eps, fused=False, **settings):
        return torch.optim.Adam(params, lr=lr, eps=eps, **settings)

    info = OptimizerInfo("plugin-adam", "Adam, plain only", True, 1e-3, 1e-8, plain)
    monkeypatch.setattr(
        external, "registered", lambda name: info if name == "plugin-adam" else None
    )
    external.external_info.cache_clear()
    try:
        lr = torch.tensor([1e-3, 1e-1], dtype=torch.float64)
        eps = torch.tensor([1e-8, 1e-2], dtype=torch.float64)
        start = torch.randn(2, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        stacked = start.clone().requires_grad_()
        opt = get_optimizer("plugin-adam", [stacked], lr=lr, eps=eps, stacked=True)
        ref = [start[c].clone().requires_grad_() for c in range(2)]
        refs = [
            torch.optim.Adam([p], lr=float(lr[c]), eps=float(eps[c])) for c, p in enumerate(ref)
        ]
        _steps(stacked, ref, opt, refs)
        for c in range(2):
            torch.testing.assert_close(stacked.detach()[c], ref[c].detach(), rtol=0, atol=0)
    finally:
        external.external_info.cache_clear()
