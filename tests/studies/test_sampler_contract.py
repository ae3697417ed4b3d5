"""GLD and CGLD keep Optuna's sampler contract: the everyday scenarios of a plain study.

Optuna's own generic sampler tests run on both in tests/optuna_samplers.
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.samplers import PartialFixedSampler, RandomSampler
from optuna.trial import TrialState

from studies.tuners import STATE_ATTR, CoordinateGLDSampler, Domain, GLDSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
SAMPLERS = [GLDSampler, CoordinateGLDSampler]


def _mixed(trial: optuna.Trial) -> float:
    x = trial.suggest_int("x", -10, 10)
    y = trial.suggest_float("y", -10.0, 10.0)
    return (x - 3) ** 2 + (y + 2) ** 2


def _three(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    y = trial.suggest_float("y", -1.0, 1.0)
    z = trial.suggest_float("z", -1.0, 1.0)
    return (x - 0.3) ** 2 + y**2 + (z + 0.4) ** 2


def _assert_credited_as_evaluated(study: optuna.Study, domain: Domain) -> None:
    """Every value GLD's history holds in `domain` is one evaluated there (trial.params),
    and no proposed-but-not-evaluated point holds a value."""
    history, _ = GLDSampler.load(study, domain)
    evaluated: dict[tuple, float] = {}
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        point = domain.from_params(trial.params)
        if point is not None:
            evaluated[point] = min(trial.value, evaluated.get(point, math.inf))
    for point, value in evaluated.items():
        assert history.value(point) == value
    for trial in study.trials:
        record = trial.system_attrs.get(STATE_ATTR)
        if record is not None and record["domain"] == domain.signature:
            proposed = tuple(record["point"])
            assert history.value(proposed) == evaluated.get(proposed)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_an_int_and_float_space_is_searched_by_gld(cls: type[GLDSampler]) -> None:
    bests, random_bests = [], []
    for seed in range(9):
        study = optuna.create_study(sampler=cls(seed=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "falling back to random" warning
            study.optimize(_mixed, n_trials=60)
        proposed = [t for t in study.trials if STATE_ATTR in t.system_attrs]
        assert len(proposed) == 59  # all but the first (nothing completed yet)
        assert all(len(t.system_attrs[STATE_ATTR]["point"]) == 2 for t in proposed)
        assert all(isinstance(t.params["x"], int) for t in study.trials)
        bests.append(study.best_value)
        baseline = optuna.create_study(sampler=RandomSampler(seed=seed))
        baseline.optimize(_mixed, n_trials=60)
        random_bests.append(baseline.best_value)
    assert np.median(bests) < 0.5 * np.median(random_bests)


def test_log_ints_are_searched_on_a_log_scale() -> None:
    domain = Domain.from_distributions(
        {"n": IntDistribution(1, 1000, log=True), "y": FloatDistribution(0.0, 1.0)}
    )
    assert not domain.discrete
    assert (domain.low, domain.high) == ((0.0, 0.0), (3.0, 1.0))
    assert domain.to_params((1.5, 0.25)) == {"n": 32, "y": 0.25}  # 10^1.5 ≈ 31.6
    assert domain.snap(np.array([1.5, 0.25])).tolist() == [math.log10(32), 0.25]

    def objective(trial: optuna.Trial) -> float:
        n = trial.suggest_int("n", 1, 1000, log=True)
        return (math.log10(n) - 2.0) ** 2 + trial.suggest_float("y", 0.0, 1.0)

    study = optuna.create_study(sampler=GLDSampler(seed=0))
    study.optimize(objective, n_trials=80)
    assert 70 <= study.best_params["n"] <= 140  # found 100 (±0.15 decades)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_partial_fixed_sampler_works_after_gld_trials(cls: type[GLDSampler]) -> None:
    study = optuna.create_study(sampler=cls(seed=1))
    study.optimize(_three, n_trials=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = PartialFixedSampler({"y": 0.0}, study.sampler)
    study.optimize(_three, n_trials=20)
    fixed = study.trials[20:]
    assert all(t.params["y"] == 0.0 for t in fixed)
    assert all(len(t.system_attrs[STATE_ATTR]["point"]) == 2 for t in fixed)  # x, z searched
    assert study.best_value < 0.05


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_study_pickles_and_continues_alike(cls: type[GLDSampler]) -> None:
    """What `joblib.dump` of an in-memory study does (it pickles the study)."""
    study = optuna.create_study(sampler=cls(seed=4))
    study.optimize(_mixed, n_trials=15)
    restored = pickle.loads(pickle.dumps(study))
    assert isinstance(restored.sampler, cls)
    study.optimize(_mixed, n_trials=15)
    restored.optimize(_mixed, n_trials=15)
    assert [t.params for t in restored.trials] == [t.params for t in study.trials]
    pickle.loads(pickle.dumps(restored.sampler)).reseed_rng()  # the lock comes back


@pytest.mark.parametrize("cls", SAMPLERS)
def test_an_enqueued_partial_trial_credits_the_point_evaluated(cls: type[GLDSampler]) -> None:
    space = {"x": IntDistribution(0, 20), "y": IntDistribution(0, 20)}
    study = optuna.create_study(sampler=cls(seed=2, search_space=space))

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_int("x", 0, 20), trial.suggest_int("y", 0, 20)
        return float((x - 12) ** 2 + (y - 5) ** 2)

    study.optimize(objective, n_trials=12)
    study.enqueue_trial({"x": 0})
    study.optimize(objective, n_trials=1)
    enqueued = study.trials[-1]
    domain = Domain.from_distributions(space)
    proposed = tuple(enqueued.system_attrs[STATE_ATTR]["point"])
    assert enqueued.params["x"] == 0 and proposed[0] != 0  # GLD proposed elsewhere
    history, _ = GLDSampler.load(study, domain)
    assert history.value((0, enqueued.params["y"])) == enqueued.value
    _assert_credited_as_evaluated(study, domain)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_changed_range_credits_what_was_evaluated(cls: type[GLDSampler]) -> None:
    def objective(trial: optuna.Trial, low: int, high: int) -> float:
        x, y = trial.suggest_int("x", low, high), trial.suggest_int("y", 0, 10)
        return float((x - 12) ** 2 + (y - 5) ** 2)

    study = optuna.create_study(sampler=cls(seed=3))
    study.optimize(lambda t: objective(t, 0, 10), n_trials=15)
    study.optimize(lambda t: objective(t, 10, 20), n_trials=15)
    old = Domain.from_distributions({"x": IntDistribution(0, 10), "y": IntDistribution(0, 10)})
    y_only = Domain.from_distributions({"y": IntDistribution(0, 10)})
    _assert_credited_as_evaluated(study, old)
    _assert_credited_as_evaluated(study, y_only)
    # x's range differs between completed trials: it leaves the search space, y stays GLD's
    later = [t.system_attrs[STATE_ATTR]["domain"] for t in study.trials[17:]]
    assert later == [y_only.signature] * len(later)
    assert all(10 <= t.params["x"] <= 20 for t in study.trials[15:])


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_first_trial_failing_early_does_not_freeze_the_space(cls: type[GLDSampler]) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        if trial.number == 0:
            raise RuntimeError("failed before suggesting y")
        y = trial.suggest_float("y", -5.0, 5.0)
        return (x - 1.0) ** 2 + (y + 2.0) ** 2

    study = optuna.create_study(sampler=cls(seed=0))
    study.optimize(objective, n_trials=60, catch=(RuntimeError,))
    assert study.trials[0].state == TrialState.FAIL
    records = [t.system_attrs.get(STATE_ATTR) for t in study.trials[2:]]
    assert all(r is not None and len(r["point"]) == 2 for r in records)  # x and y
    assert study.best_value < 0.1


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_multi_objective_study_gets_a_clear_error(cls: type[GLDSampler]) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=cls(seed=0))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        return x, 1.0 - x

    with pytest.raises(ValueError, match="single-objective studies only"):
        study.optimize(objective, n_trials=3)
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # at the first suggest


@pytest.mark.parametrize("cls", SAMPLERS)
def test_reseed_rng_changes_the_run(cls: type[GLDSampler]) -> None:
    space = {"x": IntDistribution(0, 20), "y": IntDistribution(0, 20)}

    def run(sampler: GLDSampler) -> list[dict]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_int("x", 0, 20) + t.suggest_int("y", 0, 20), 12)
        return [t.params for t in study.trials]

    first = run(cls(seed=5, search_space=space))
    assert run(cls(seed=5, search_space=space)) == first  # seeded: reproducible
    reseeded = []
    for _ in range(2):
        sampler = cls(seed=5, search_space=space)
        sampler.reseed_rng()
        reseeded.append(run(sampler))
    assert reseeded[0] != first and reseeded[1] != first and reseeded[0] != reseeded[1]


@pytest.mark.parametrize("cls", SAMPLERS)
def test_categoricals_go_to_the_independent_sampler(cls: type[GLDSampler]) -> None:
    def objective(trial: optuna.Trial) -> float:
        act = trial.suggest_categorical("act", ["relu", "gelu", "tanh"])
        return _mixed(trial) + (0.0 if act == "gelu" else 1.0)

    study = optuna.create_study(sampler=cls(seed=6))
    study.optimize(objective, n_trials=40)
    proposed = [t.system_attrs.get(STATE_ATTR) for t in study.trials[1:]]
    assert all(r is not None and len(r["point"]) == 2 for r in proposed)  # x and y
    assert {t.params["act"] for t in study.trials} == {"relu", "gelu", "tanh"}
