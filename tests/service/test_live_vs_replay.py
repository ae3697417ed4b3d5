"""A live study and the replay measure the same tuner.

A worker that answers from a grid table drives live studies through the service's own
lease and result code, on SQLite and PostgreSQL. The cost of a study is the number of
distinct trainings (in proposal order) until one lies within δ of the table's best. For
GLD and CGLD, whose plans depend only on their seed and the results, live and replay must
agree exactly; for random search, TPE and CMA-ES (reseeded on every server ask) the live
costs must be a sample of the replay's distribution.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import select

from service.db import Database
from service.leases import lease, report_result
from service.models import Trial, utcnow
from service.repositories import studies
from service.tuning import _seed
from studies.grids import grid_values
from studies.protocol import LeaseRequest, TrialResult
from studies.specs import StudySpec
from studies.tuners.tabular import run_tabular
from tests.service.helpers import settings
from tests.studies.helpers import separable

ALPHAS, EPSILONS = grid_values("paper")
#: A 21×21 bowl with a little fixed noise: only its bottom cell lies within δ, so random
#: search needs ~220 trainings where a tuner that reads its results needs ~30.
VALUES = separable() + np.random.default_rng(0).uniform(0.0, 0.3, (21, 21))
DELTA = 0.5
TARGET = float(VALUES.min()) + DELTA
BUDGET = 150
LIVE_SEEDS = range(6)
REPLAY_SEEDS = range(60)
#: The worker's default --max-batch: larger than any in-flight limit here.
WORKER_BATCH = 64


def _spec(tuner: str, seed: int, **options: Any) -> StudySpec:
    return StudySpec.model_validate(
        {
            "name": f"{tuner}-{seed}",
            "task": "mnist1d-mlp",
            "optimizer": "adam",
            "space": {"grid": "paper"},
            "tuner": {"name": tuner, "seed": seed, **options},
            "budget": BUDGET,
        }
    )


def _run_live(db: Database, spec: StudySpec) -> tuple[list[float], int]:
    """Train the study from the table until a training reaches the target (cancelling it
    then) or its end; its trainings' values in proposal order, and the most proposals it
    had in flight at once."""
    config = settings(str(db.engine.url))
    with db.write() as conn:
        study_id = studies.create_study(conn, spec, utcnow())
    alphas = {a: i for i, a in enumerate(ALPHAS)}
    epsilons = {e: j for j, e in enumerate(EPSILONS)}
    most = 0
    while True:
        got = lease(db, config, LeaseRequest(worker_id="table", max_trials=WORKER_BATCH))
        if not got.trials:
            break
        most = max(most, len(got.trials))
        values = [float(VALUES[alphas[t.alpha], epsilons[t.eps]]) for t in got.trials]
        for trial, value in zip(got.trials, values, strict=True):
            report_result(db, trial.trial_id, TrialResult(token=got.token, value=value))
        if min(values) <= TARGET:
            with db.write() as conn:
                studies.change_state(conn, study_id, "cancel", utcnow())
            break
    with db.read() as conn:
        rows = conn.execute(
            select(Trial.training, Trial.value)
            .where(Trial.study_id == study_id, Trial.training.is_not(None))
            .order_by(Trial.training)
        ).all()
    assert [r.training for r in rows] == list(range(len(rows)))
    assert all(r.value is not None for r in rows)  # one worker: nothing left in flight
    return [r.value for r in rows], most


def _cost(values: list[float]) -> int:
    """Trainings until one reaches the target; the budget + 1 when none does (censored)."""
    hits = [n for n, v in enumerate(values, 1) if v <= TARGET]
    return hits[0] if hits else BUDGET + 1


def _replay_cost(tuner: str, seed: int, **options: Any) -> int:
    run = run_tabular(tuner, VALUES, seed=seed, target=TARGET, **options)
    return run.cost if not run.censored and run.cost <= BUDGET else BUDGET + 1


@cache
def _replay_costs(tuner: str, parallelism: int | None) -> list[int]:
    """The replay's costs over many seeds (computed once for both databases)."""
    options = {} if parallelism is None else {"parallelism": parallelism}
    return [_replay_cost(tuner, seed, **options) for seed in REPLAY_SEEDS]


@pytest.fixture
def db(database_url: str) -> Any:
    database = Database(database_url, pool_size=2)
    yield database
    database.dispose()


@pytest.mark.parametrize("tuner", ["gld", "cgld"])
def test_live_gld_trains_exactly_what_the_replay_trains(db: Database, tuner: str) -> None:
    for seed in LIVE_SEEDS:
        values, most = _run_live(db, _spec(tuner, seed))
        run = run_tabular(tuner, VALUES, seed=_seed(seed, 0), target=TARGET)
        best = np.minimum.accumulate(values).tolist()
        assert best[: len(run.trace)] == run.trace[:BUDGET]
        assert most <= 6  # K + 1 on the paper grid (radii 16, 8, 4, 2, 1), + its start
        assert _cost(values) == min(run.cost if not run.censored else BUDGET + 1, BUDGET + 1)


def _check_distribution(db: Database, tuner: str, limit: int, **options: Any) -> None:
    live = []
    for seed in LIVE_SEEDS:
        values, most = _run_live(db, _spec(tuner, seed, **options))
        assert most <= limit
        live.append(_cost(values))
    replay = _replay_costs(tuner, options.get("parallelism"))
    test = stats.mannwhitneyu(live, replay, alternative="two-sided")
    assert test.pvalue > 0.01, (live, np.median(replay))


@pytest.mark.parametrize(("tuner", "limit"), [("random", WORKER_BATCH), ("tpe", 1), ("cmaes", 6)])
def test_live_costs_follow_the_replay_distribution(db: Database, tuner: str, limit: int) -> None:
    _check_distribution(db, tuner, limit)


def test_a_raised_limit_follows_the_replay_too(sqlite_url: str) -> None:
    """TPE with four in flight (constant liar), live and replayed alike (the lease code is
    the same on both databases, so SQLite suffices)."""
    database = Database(sqlite_url, pool_size=2)
    try:
        _check_distribution(database, "tpe", 4, parallelism=4)
    finally:
        database.dispose()
