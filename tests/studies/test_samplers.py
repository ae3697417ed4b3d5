"""The tuners as Optuna samplers: plain studies, trials in flight, persistence, grid bounds."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from studies.tuners import (
    STATE_ATTR,
    TUNERS,
    CoordinateGLDSampler,
    GLDSampler,
    grid_distributions,
    log_distributions,
    make_sampler,
)
from studies.tuners.domain import Domain
from studies.tuners.inflight import in_flight_limit, iteration_end
from studies.tuners.tabular import run_tabular
from tests.studies.helpers import separable

optuna.logging.set_verbosity(optuna.logging.WARNING)
SHAPE = (21, 21)


def _ask_tell(study: optuna.Study, values: np.ndarray, n: int, shape=SHAPE) -> list[tuple]:
    points = []
    for _ in range(n):
        trial = study.ask(grid_distributions(shape))
        point = (trial.params["i_alpha"], trial.params["j_eps"])
        points.append(point)
        study.tell(trial, float(values[point]))
    return points


@pytest.mark.parametrize("name", TUNERS)
def test_make_sampler_builds_every_tuner(name: str) -> None:
    sampler = make_sampler(name, seed=1, grid_shape=SHAPE)
    assert isinstance(sampler, optuna.samplers.BaseSampler)


def test_make_sampler_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="gld, cgld"):
        make_sampler("hyperband")
    with pytest.raises(ValueError, match="grid_shape"):
        make_sampler("grid")


@pytest.mark.parametrize("cls", [GLDSampler, CoordinateGLDSampler])
def test_runs_in_a_plain_study_on_integers(cls: type[GLDSampler]) -> None:
    def objective(trial: optuna.Trial) -> float:
        i = trial.suggest_int("i_alpha", 0, 20)
        j = trial.suggest_int("j_eps", 0, 20)
        return float((i - 12) ** 2 + (j - 5) ** 2)

    study = optuna.create_study(sampler=cls(seed=3))
    study.optimize(objective, n_trials=80)
    assert study.best_value == 0.0
    assert sum(STATE_ATTR in t.system_attrs for t in study.trials) == 79  # first: a probe


@pytest.mark.parametrize("name", ["gld", "cgld"])
def test_runs_on_a_continuous_log_space(name: str) -> None:
    space = log_distributions((-7.0, 4.0), (-8.0, 2.0))
    study = optuna.create_study(sampler=make_sampler(name, seed=0, search_space=space))

    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_float("log10_alpha", -7.0, 4.0)
        e = trial.suggest_float("log10_eps", -8.0, 2.0)
        return (a + 1.0) ** 2 + 0.1 * (e + 3.0) ** 2

    study.optimize(objective, n_trials=200)
    assert study.best_value < 0.05
    for trial in study.trials:
        assert -7.0 <= trial.params["log10_alpha"] <= 4.0
        assert -8.0 <= trial.params["log10_eps"] <= 2.0


def test_iteration_candidates_go_out_together() -> None:
    """Several asks before any tell: start point + K+1 = 5 candidates of iteration 0, then on."""
    values = separable()
    study = optuna.create_study(sampler=make_sampler("gld", seed=5, grid_shape=SHAPE))
    trials = [study.ask(grid_distributions(SHAPE)) for _ in range(14)]
    iterations = [
        study._storage.get_trial_system_attrs(t._trial_id)[STATE_ATTR]["it"] for t in trials
    ]
    assert iterations == [0] * 6 + [1] * 5 + [2] * 3
    for trial in trials:
        study.tell(trial, float(values[trial.params["i_alpha"], trial.params["j_eps"]]))
    _ask_tell(study, values, 60)
    assert study.best_value == 0.0


@pytest.mark.parametrize("name", ["gld", "cgld"])
def test_a_new_sampler_continues_the_same_run(name: str) -> None:
    """State lives in the trials: a restarted server (sampler seed unknown) goes on alike."""
    values = separable()
    reference = optuna.create_study(sampler=make_sampler(name, seed=11, grid_shape=SHAPE))
    expected = _ask_tell(reference, values, 40)
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(
        storage=storage, study_name="s", sampler=make_sampler(name, seed=11, grid_shape=SHAPE)
    )
    got = _ask_tell(first, values, 17)
    resumed = optuna.load_study(
        storage=storage, study_name="s", sampler=make_sampler(name, seed=None, grid_shape=SHAPE)
    )
    got += _ask_tell(resumed, values, 23)
    assert got == expected


def _ask_tell_in_flight(study: optuna.Study, values: np.ndarray, distinct: int) -> list[tuple]:
    """Drive a study as the server does under the sampler's in-flight limit: ask until the
    limit (or GLD's iteration end) binds, then tell everything in flight in ask order."""
    domain = Domain.from_distributions(grid_distributions(SHAPE))
    limit = in_flight_limit(study.sampler, domain).limit or 1
    points: list[tuple] = []
    pending: list[tuple[optuna.Trial, tuple]] = []
    told: set[tuple] = set()
    end = False
    while len(told) < distinct:
        if pending and (len(pending) >= limit or end):
            for trial, point in pending:
                study.tell(trial, float(values[point]))
                told.add(point)
            pending = []
        trial = study.ask(grid_distributions(SHAPE))
        point = (trial.params["i_alpha"], trial.params["j_eps"])
        points.append(point)
        end = iteration_end(study._storage.get_trial_system_attrs(trial._trial_id))
        if point in told:
            study.tell(trial, float(values[point]))
        else:
            pending.append((trial, point))
    return points


@pytest.mark.parametrize("name", TUNERS)
def test_replay_runs_the_same_sampler_as_a_study(name: str) -> None:
    """The replay is the sampler in a study driven under its in-flight limit."""
    values = separable()
    for seed in (0, 1):
        run = run_tabular(name, values, seed=seed, target=0.5, max_asks=80)
        study = optuna.create_study(sampler=make_sampler(name, seed=seed, grid_shape=SHAPE))
        points = _ask_tell_in_flight(study, values, run.cost)
        distinct = list(dict.fromkeys(points))[: run.cost]
        assert np.minimum.accumulate([values[p] for p in distinct]).tolist() == run.trace


@pytest.mark.parametrize("name", TUNERS)
@pytest.mark.parametrize("shape", [(21, 21), (3, 5)])
def test_no_proposal_leaves_the_grid(name: str, shape: tuple[int, int]) -> None:
    values = np.random.default_rng(0).uniform(0, 10, shape)
    study = optuna.create_study(sampler=make_sampler(name, seed=2, grid_shape=shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = _ask_tell(study, values, min(120, values.size), shape)
    for i, j in points:
        assert 0 <= i < shape[0] and 0 <= j < shape[1]


@pytest.mark.parametrize("name", TUNERS)
def test_a_seed_makes_runs_reproducible(name: str) -> None:
    values = separable()
    first = run_tabular(name, values, seed=7, target=0.5)
    again = run_tabular(name, values, seed=7, target=0.5)
    assert (first.trace, first.asks) == (again.trace, again.asks)
    others = [run_tabular(name, values, seed=s, target=0.5).trace for s in (8, 9, 10)]
    assert any(o != first.trace for o in others)


def test_gld_rejects_a_categorical_search_space() -> None:
    """A given search_space is GLD's box; mixed int × float is one (test_sampler_contract)."""
    space = {"i_alpha": IntDistribution(0, 3), "act": CategoricalDistribution(["relu", "gelu"])}
    with pytest.raises(ValueError, match="int and float"):
        GLDSampler(search_space=space)
