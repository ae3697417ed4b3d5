"""Our optimizers against independent code: pytorch-optimizer, adabelief-pytorch, torch.optim."""

from __future__ import annotations

import warnings

import pytest
import torch

from optim import AdaBelief, AvaGrad
from tests.optim.helpers import run

STEPS = 60


def assert_close(actual, expected, rtol=1e-10) -> None:
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_avagrad_equals_pytorch_optimizer(params, wd):
    from pytorch_optimizer import AvaGrad as KozistrAvaGrad

    theirs = run(
        lambda ps: KozistrAvaGrad(ps, lr=0.1, eps=0.1, weight_decay=wd, weight_decouple=False),
        params,
        STEPS,
    )
    ours = run(lambda ps: AvaGrad(ps, lr=0.1, eps=0.1, weight_decay=wd), params, STEPS)
    assert_close(ours, theirs)


@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_adabelief_equals_adabelief_pytorch(params, wd):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from adabelief_pytorch import AdaBelief as Reference

    def theirs_factory(ps):
        return Reference(
            ps,
            lr=1e-2,
            eps=1e-12,
            weight_decay=wd,
            rectify=False,
            weight_decouple=False,
            print_change_log=False,
        )

    theirs = run(theirs_factory, params, STEPS)
    ours = run(lambda ps: AdaBelief(ps, lr=1e-2, eps=1e-12, weight_decay=wd), params, STEPS)
    assert_close(ours, theirs)


TORCH_NAMES = {
    "sgd": lambda ps, lr, eps, wd: torch.optim.SGD(ps, lr=lr, momentum=0.9, weight_decay=wd),
    "adam": lambda ps, lr, eps, wd: torch.optim.Adam(ps, lr=lr, eps=eps, weight_decay=wd),
    "adamw": lambda ps, lr, eps, wd: torch.optim.AdamW(ps, lr=lr, eps=eps, weight_decay=wd),
    "amsgrad": lambda ps, lr, eps, wd: torch.optim.Adam(
        ps, lr=lr, eps=eps, weight_decay=wd, amsgrad=True
    ),
}


@pytest.mark.parametrize("name", sorted(TORCH_NAMES))
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_stacked_rule_reproduces_torch(params, name, wd):
    """C = 1 through our stacked rule equals torch.optim itself."""
    from optim.registry import OPTIMIZERS

    torch_run = run(lambda ps: TORCH_NAMES[name](ps, 3e-3, 1e-6, wd), params, STEPS)
    stacked = [p.unsqueeze(0) for p in params]
    ours = run(
        lambda ps: OPTIMIZERS[name].stacked(ps, 3e-3, 1e-6, stacked=True, weight_decay=wd),
        stacked,
        STEPS,
    )
    assert_close([p.squeeze(0) for p in ours], torch_run)
