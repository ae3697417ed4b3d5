"""Both versions of the task train the same configurations to the same results, and learn."""

from __future__ import annotations

import pytest
import torch
from avatune_example.batched import BatchedSpirals
from avatune_example.spirals import Spirals, initial_weights, make_splits

from workers.trainer import TrialConfig, train

#: Small and large α, Adam's ε and a large one, two training seeds.
CONFIGS = [
    TrialConfig(lr, eps, seed) for lr in (1e-3, 3e-2) for eps in (1e-8, 1e-2) for seed in (0, 1)
]


@pytest.mark.parametrize("optimizer", ["adam", "example-adamax", "torch.optim:NAdam"])
def test_batched_equals_one_at_a_time(optimizer: str) -> None:
    """Same init, same minibatches: each stacked configuration ends where it would alone
    (float64, so only rounding differs; the batched run steps 4 configurations per job)."""
    kwargs = {"steps": 120, "batch_size": 32, "dtype": torch.float64}
    alone = train(Spirals(hidden=16), optimizer, CONFIGS, **kwargs)
    stacked = train(BatchedSpirals(hidden=16), optimizer, CONFIGS, max_batch=4, **kwargs)
    for one, many in zip(alone, stacked, strict=True):
        assert many.objective == one.objective and many.test_metric == one.test_metric
        assert many.diverged is one.diverged is False
        assert many.curve == pytest.approx(one.curve, rel=1e-9, abs=1e-9)


def test_the_task_learns_the_spirals() -> None:
    """A few hundred Adam steps take every seed far below chance (50 %); α = 0 stays near it."""
    task = BatchedSpirals()
    configs = [TrialConfig(1e-2, 1e-8, seed) for seed in range(3)] + [TrialConfig(0.0, 1e-8)]
    *trained, untrained = train(task, "adam", configs, steps=task.default_steps)
    assert all(r.objective < 15 and r.test_metric < 15 for r in trained), trained
    assert all(r.curve[-1] < r.curve[0] / 2 for r in trained)
    assert untrained.objective > 35 and min(untrained.curve) > 0.6  # ≈ ln 2: untrained


def test_data_are_fixed_and_seeds_change_only_init_and_order() -> None:
    a, b = make_splits(1.0, 0.05, data_seed=0), make_splits(1.0, 0.05, data_seed=0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, make_splits(1.0, 0.05, data_seed=1).x_train)
    assert 0.4 < a.y_train.double().mean() < 0.6  # balanced: chance is 50 %
    w0, w1 = initial_weights(0, 8), initial_weights(1, 8)
    assert all(torch.equal(x, y) for x, y in zip(w0, initial_weights(0, 8), strict=True))
    assert not torch.equal(w0[0], w1[0])
    task = Spirals()
    first, again = (
        task.batch_keys(0, 50, 32, torch.device("cpu")),
        task.batch_keys(0, 50, 32, torch.device("cpu")),
    )
    assert torch.equal(first, again) and not torch.equal(
        first, task.batch_keys(1, 50, 32, torch.device("cpu"))
    )


def test_options_shape_the_model_and_bad_ones_are_refused() -> None:
    model = BatchedSpirals(hidden=8).build(0, 3, device=torch.device("cpu"), dtype=torch.float32)
    assert [tuple(p.shape) for p in model.parameters][:2] == [(3, 8, 2), (3, 8)]
    with pytest.raises(ValueError, match="hidden must be between 1 and 4096"):
        Spirals(hidden=0)
    with pytest.raises(ValueError, match="one configuration at a time"):
        Spirals().build(0, 2, device=torch.device("cpu"), dtype=torch.float32)
