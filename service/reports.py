"""An experiment's separability report: computed by `studies.report` from the complete grid
tables once (on a background thread: replays take a while), then stored in the database
with the tables themselves."""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from service.db import Database
from service.errors import Unavailable
from service.models import utcnow
from service.repositories import experiments
from studies.schemas import ExperimentReport
from studies.specs import ExperimentSpec

log = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    """JSON-ready data: pydantic models dumped, non-finite floats as None."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    return value


def build_metrics(spec: ExperimentSpec, tables: list[Any], out_dir: Path) -> dict[str, Any]:
    """Replay the experiment's tuners on its grids and compute the report (`studies.report`)."""
    from studies.report import build_report

    metrics = build_report(
        tables,
        out_dir=out_dir,
        tuners=list(spec.replay.tuners),
        seeds=spec.replay.seeds,
        deltas=spec.replay.deltas_for(spec.task.name),
        delta_kind=spec.delta_kind,
        bootstrap=spec.replay.bootstrap,
    )
    return _json_safe(metrics)


def _compute(
    db: Database, data_dir: Path, experiment_id: int, spec: ExperimentSpec, tables: list[Any]
) -> None:
    """Compute and store a report (on a background thread); remember a failure's message."""
    cache = db.cache
    try:
        metrics = build_metrics(spec, tables, Path(data_dir) / "reports" / str(experiment_id))
        data = {
            "metrics": metrics,
            "tables": [json.loads(t.model_dump_json(exclude_none=True)) for t in tables],
        }
        with db.write() as conn:
            experiments.store_report(conn, experiment_id, data, utcnow())
    except Exception as error:  # a report bug must not kill the server; the client is told
        log.exception("report of experiment %s failed", experiment_id)
        with cache.reports_lock:
            cache.report_errors[experiment_id] = f"{type(error).__name__}: {error}"[:1000]
    finally:
        with cache.reports_lock:
            cache.reports_running.discard(experiment_id)


def report(db: Database, data_dir: Path, experiment_id: int) -> ExperimentReport | None:
    """The stored report; else start computing it and return None (ask again later).

    `Conflict` while the grids are incomplete; `Unavailable` when the last computation
    failed (the next request tries again).
    """
    with db.read() as conn:
        stored = experiments.stored_report(conn, experiment_id)
        if stored is not None:
            data, at = stored
            return ExperimentReport(experiment_id=experiment_id, computed_at=at, **data)
        tables = experiments.grid_tables(conn, experiment_id)
        spec = experiments.get_experiment(conn, experiment_id).spec
    cache = db.cache
    with cache.reports_lock:
        if experiment_id in cache.report_errors:
            error = cache.report_errors.pop(experiment_id)
            raise Unavailable(f"computing the report failed: {error}; ask again to retry")
        if experiment_id in cache.reports_running:
            return None
        cache.reports_running.add(experiment_id)
    threading.Thread(
        target=_compute,
        args=(db, data_dir, experiment_id, spec, tables),
        name=f"report-{experiment_id}",
        daemon=True,
    ).start()
    return None
