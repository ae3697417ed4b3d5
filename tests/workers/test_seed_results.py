"""The worker's per-seed results: what it sends for a trial trained over several seeds."""

from __future__ import annotations

import pytest

from studies.protocol import LeasedTrial, LeaseResponse
from studies.specs import Fidelity, OptimizerRef, TaskRef
from workers.lease_training import seed_outcome, torch_trainer, wire_result
from workers.trainer import TrialConfig, TrialResult, train

CHANCE = 90.0
TOKEN = "t" * 32


def run(objective: float, diverged: bool = False, test: float | None = None) -> TrialResult:
    """One seed's training as the trainer reports it (a diverged run at chance)."""
    if diverged:
        return TrialResult(CHANCE, CHANCE, [2.0], True, 1.5)
    return TrialResult(objective, objective + 1 if test is None else test, [2.0, 1.0], False, 1.5)


def test_one_diverged_seed_leaves_the_other_seeds_values() -> None:
    outcome = seed_outcome([run(30.0), run(0.0, diverged=True), run(40.0)], CHANCE)
    assert outcome.seed_values == [30.0, CHANCE, 40.0]
    assert outcome.seed_diverged == [False, True, False]
    assert outcome.seed_test_values == [31.0, CHANCE, 41.0]
    assert outcome.value == pytest.approx((30 + CHANCE + 40) / 3)
    assert outcome.test_value == pytest.approx((31 + CHANCE + 41) / 3)
    assert outcome.diverged and outcome.chance == CHANCE
    sent = wire_result(TOKEN, outcome)  # the wire model accepts it as it is
    assert sent.seed_values == [30.0, CHANCE, 40.0] and sent.diverged
    assert sent.seed_diverged == [False, True, False] and sent.chance == CHANCE


def test_values_above_chance_are_clipped_per_seed() -> None:
    outcome = seed_outcome([run(95.0, test=97.0), run(20.0)], CHANCE)
    assert outcome.seed_values == [CHANCE, 20.0] and not outcome.diverged
    assert outcome.seed_test_values == [CHANCE, 21.0]
    assert outcome.value == pytest.approx((CHANCE + 20) / 2)


def test_torch_trainer_sends_each_seed_of_a_lease() -> None:
    """Two seeds per trial: each seed's value is what training that seed alone gives."""
    steps, seeds = 5, 2
    points = [(1e-2, 1e-8), (1e-3, 1e-4)]
    adam = OptimizerRef(name="adam")
    lease = LeaseResponse(
        token=TOKEN,
        lease_seconds=60,
        heartbeat_seconds=10,
        task=TaskRef(name="mnist1d-mlp"),
        fidelity=Fidelity(steps=steps, seeds=seeds, seed=3),
        trials=[
            LeasedTrial(trial_id=k, study_id=1, number=k, alpha=a, eps=e, optimizer=adam)
            for k, (a, e) in enumerate(points)
        ],
    )
    outcomes = torch_trainer("cpu")(lease, lambda done, total: None)
    configs = [TrialConfig(a, e, s) for a, e in points for s in (3, 4)]
    alone = train("mnist1d-mlp", "adam", configs, steps=steps)
    for k, outcome in enumerate(outcomes):
        expected = [r.objective for r in alone[k * seeds : (k + 1) * seeds]]
        assert outcome.seed_values == pytest.approx(expected)
        assert outcome.seed_diverged == [False, False] and outcome.chance == CHANCE
        assert outcome.value == pytest.approx(sum(expected) / seeds)
        assert wire_result(TOKEN, outcome).seed_values == outcome.seed_values
