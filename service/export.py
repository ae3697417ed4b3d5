"""A study's trials as CSV or JSON, for analysis elsewhere."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from service.schemas import StudyOut, TrialOut

CSV_COLUMNS = (
    "number",
    "state",
    "alpha",
    "eps",
    "i_alpha",
    "j_eps",
    "value",
    "test_value",
    "diverged",
    "seed_values",
    "seed_test_values",
    "seed_diverged",
    "chance",
    "attempts",
    "worker_id",
    "source_trial_id",
    "seconds",
    "created_at",
    "finished_at",
)


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None, a JSON array for the per-seed lists."""
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list) else value


def to_csv(trials: list[TrialOut]) -> str:
    """One row per trial, in number order (curves left out; per-seed values as JSON arrays)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for trial in trials:
        data = trial.model_dump(mode="json")
        writer.writerow([_cell(data[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()


def to_json(study: StudyOut, trials: list[TrialOut]) -> dict[str, Any]:
    """The study and all its trials (curves included)."""
    return {
        "study": study.model_dump(mode="json"),
        "trials": [t.model_dump(mode="json") for t in trials],
    }
