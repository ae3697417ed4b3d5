"""A diverging configuration is flagged at chance level and leaves the others untouched."""

from __future__ import annotations

import math

import pytest
import torch

from optim import get_optimizer
from tests.workers.helpers import assert_same_results
from workers.device import resolve_device
from workers.divergence import freeze_configs
from workers.numerics import composition_rtol
from workers.trainer import TrialConfig, train

HEALTHY = [TrialConfig(1e-2, 1e-8), TrialConfig(1e-1, 1e-3), TrialConfig(3e-3, 1e-1)]


@pytest.mark.parametrize(
    ("optimizer", "blowup"),
    [
        ("sgd", TrialConfig(1e30, 1e-8)),
        ("adam", TrialConfig(1e38, 1e-8)),
        ("avagrad", TrialConfig(1e38, 1e-8)),
    ],
)
def test_diverging_config_is_isolated(optimizer: str, blowup: TrialConfig) -> None:
    configs = [HEALTHY[0], blowup, *HEALTHY[1:]]
    together = train("mnist1d-mlp", optimizer, configs, steps=60, max_batch=4)
    bad = together[1]
    assert bad.diverged
    assert bad.objective == 90.0 and bad.test_metric == 90.0
    assert all(math.isfinite(v) for v in bad.curve) and len(bad.curve) < 60
    healthy = [r for i, r in enumerate(together) if i != 1]
    assert not any(r.diverged for r in healthy)
    alone = train("mnist1d-mlp", optimizer, HEALTHY, steps=60, max_batch=4)
    assert_same_results(healthy, alone, rtol=composition_rtol(resolve_device()))


def test_every_config_diverging_stops_early() -> None:
    results = train("mnist1d-mlp", "sgd", [TrialConfig(1e30, 0.0)] * 2, steps=400, max_batch=2)
    assert all(r.diverged and r.objective == 90.0 for r in results)


def test_freeze_zeroes_params_state_and_gamma() -> None:
    params = [torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 2, 2, dtype=torch.float64)]
    optimizer = get_optimizer(
        "avagrad",
        params,
        lr=torch.full((3,), 0.1, dtype=torch.float64),
        eps=torch.full((3,), 0.1, dtype=torch.float64),
        stacked=True,
    )
    for _ in range(3):
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()
    params[0].grad[1] = math.nan
    params[0][1, 0] = math.inf
    optimizer.step()
    freeze_configs(params, optimizer, torch.tensor([1]))
    for p in params:
        assert torch.all(p[1] == 0)
        assert torch.isfinite(p).all()
        for buffer in optimizer.state[p].values():
            assert torch.all(buffer[1] == 0) and torch.isfinite(buffer).all()
    gamma = optimizer.param_groups[0]["gamma"]
    assert gamma[1] == 0 and torch.isfinite(gamma).all()
    for p in params:  # a frozen configuration stays at zero
        p.grad = torch.randn_like(p)
        p.grad[1] = 0
    optimizer.step()
    assert all(torch.all(p[1] == 0) for p in params)
