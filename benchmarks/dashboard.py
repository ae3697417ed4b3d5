"""Dashboard speed at 10,000 trials: server time and bytes of the study page and its data
endpoint (full snapshot, and the incremental answer after a cursor).

A SQLite database gets one 100×100 grid study; 9,950 of its trials are finished (values,
12-point curves, finish times spread over 20 minutes), then a snapshot's cursor is taken
and 50 more finish — what a poll after them returns. The server runs as
`python -m service serve` in its own process; each URL is fetched REPEATS times over
loopback after a warm-up, and the median wall time is reported (loopback adds well under
a millisecond). Prints one JSON line. Targets: study_page_ms ≤ 300 and study_page_bytes
≤ 2 MB.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_ALPHA = N_EPS = 100
LATE = 50
REPEATS = 15


def _spec() -> Any:
    from studies.specs import StudySpec

    return StudySpec.model_validate(
        {
            "name": "bench 10k",
            "task": "mnist1d-mlp",
            "optimizer": "avagrad",
            "space": {
                "alphas": [10 ** (-6 + 8 * k / (N_ALPHA - 1)) for k in range(N_ALPHA)],
                "epsilons": [10 ** (-9 + 9 * k / (N_EPS - 1)) for k in range(N_EPS)],
            },
            "tuner": {"name": "grid", "seed": 0},
        }
    )


def _finish(conn: Any, rows: list[Any], start: Any, span_s: float) -> None:
    from sqlalchemy import bindparam, update

    from service.models import Trial, TrialState

    statement = (
        update(Trial)
        .where(Trial.id == bindparam("tid"))
        .values(
            state=TrialState.complete,
            value=bindparam("v"),
            test_value=bindparam("v"),
            curve=bindparam("c"),
            seconds=1.5,
            worker_id="bench",
            attempts=1,
            leased_at=bindparam("at"),
            finished_at=bindparam("at"),
        )
    )
    params = []
    for k, row in enumerate(rows):
        a, e = math.log10(row.alpha) + 2.0, math.log10(row.eps) + 5.0
        value = round(10.0 + 2.0 * a * a + 0.5 * e * e, 4)
        at = start + timedelta(seconds=span_s * k / max(len(rows), 1))
        params.append(
            {"tid": row.id, "v": value, "at": at, "c": [value + 20 / (s + 1) for s in range(12)]}
        )
    conn.execute(statement, params)


def seed(url: str) -> int:
    """The study with 9,950 finished trials; returns its id."""
    from sqlalchemy import select

    from service.db import Database
    from service.migrations import upgrade
    from service.models import Trial, utcnow
    from service.repositories.studies import create_study

    upgrade(url)
    db = Database(url, pool_size=1)
    now = utcnow()
    with db.write() as conn:
        study_id = create_study(conn, _spec(), now - timedelta(minutes=30))
        rows = conn.execute(
            select(Trial.id, Trial.alpha, Trial.eps)
            .order_by(Trial.id)
            .limit(N_ALPHA * N_EPS - LATE)
        ).all()
        _finish(conn, rows, now - timedelta(minutes=20), 19 * 60)
    db.dispose()
    return study_id


def finish_late(url: str) -> None:
    """Finish the last 50 trials now."""
    from sqlalchemy import select

    from service.db import Database
    from service.models import Trial, TrialState, utcnow

    db = Database(url, pool_size=1)
    with db.write() as conn:
        rows = conn.execute(
            select(Trial.id, Trial.alpha, Trial.eps).where(Trial.state == TrialState.queued)
        ).all()
        _finish(conn, rows, utcnow(), 1.0)
    db.dispose()


def timed(http: Any, path: str) -> tuple[float, int]:
    """Median milliseconds over REPEATS fetches (after one warm-up), and the body's bytes."""
    http.get(path).raise_for_status()
    times, size = [], 0
    for _ in range(REPEATS):
        start = time.perf_counter()
        response = http.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return round(statistics.median(times), 1), size


def main() -> None:
    """Seed, serve, measure; print one JSON line."""
    import httpx

    from tests.service.helpers import ServerProcess

    warnings.simplefilter("ignore")
    figures: dict[str, Any] = {
        "trials": N_ALPHA * N_EPS,
        "cpus": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="avatune-bench-") as tmp:
        url = f"sqlite:///{tmp}/avatune.db"
        started = time.perf_counter()
        study_id = seed(url)
        figures["seed_s"] = round(time.perf_counter() - started, 1)
        with (
            ServerProcess(url, lease_seconds=600) as server,
            httpx.Client(
                base_url=server.url, timeout=60, headers={"Accept-Encoding": "identity"}
            ) as http,
        ):
            base = f"/studies/{study_id}"
            figures["study_page_ms"], figures["study_page_bytes"] = timed(http, base)
            figures["data_ms"], figures["data_bytes"] = timed(http, f"{base}/data")
            cursor = http.get(f"{base}/data").json()["cursor"]
            finish_late(url)
            after = f"{base}/data?after={cursor}"
            figures["data_new_ms"], figures["data_new_bytes"] = timed(http, after)
            figures["data_new_trials"] = len(http.get(after).json()["trials"])
            figures["trials_by_value_ms"], _ = timed(http, f"{base}/trials?sort=value&order=asc")
            figures["overview_ms"], _ = timed(http, "/")
    figures["targets_met"] = (
        figures["study_page_ms"] <= 300 and figures["study_page_bytes"] <= 2_000_000
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
