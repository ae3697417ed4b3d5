"""What must hold after any run, read straight from the database: every grid point finished
exactly once with its true value, no lease left behind, attempts within their limit."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import create_engine, text

from tests.service.fake_training import objective


def trial_rows(url: str, study_id: int) -> list[Any]:
    """Every trial of the study, as database rows."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(
                text("SELECT id, number, state, alpha, eps, i_alpha, j_eps, value, attempts, "
                     "worker_id, lease_token, lease_expires_at FROM trials "
                     "WHERE study_id = :s ORDER BY number"), {"s": study_id}
            ))
    finally:
        engine.dispose()


def workers_trials_leased(url: str) -> int:
    """The workers table's count of trials leased, over all workers."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COALESCE(SUM(trials_leased), 0) FROM workers"))
                       .scalar_one())
    finally:
        engine.dispose()


def assert_finished_exactly_once(rows: list[Any], n_points: int, max_attempts: int) -> None:
    """One complete trial per grid point, numbered 0..n-1, right values, no live lease."""
    assert len(rows) == n_points, f"{len(rows)} trials for {n_points} grid points"
    assert [r.number for r in rows] == list(range(n_points))
    assert len({(r.i_alpha, r.j_eps) for r in rows}) == n_points, "a grid point twice"
    states = {r.state for r in rows}
    assert states == {"complete"}, f"states left: {states}"
    for r in rows:
        assert math.isclose(r.value, objective(r.alpha, r.eps), rel_tol=1e-12), r
        assert 1 <= r.attempts <= max_attempts, r
        assert r.lease_token is None and r.lease_expires_at is None, r
        assert r.worker_id is not None, r
