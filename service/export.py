"""A study's trainings as CSV or JSON, for analysis elsewhere.

A row is a training; the tuner's repeat asks of its point are counted in `repeats` (the
JSON form also lists them, each with the training whose result it took).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from studies.schemas import StudyOut, TrialOut

CSV_COLUMNS = (
    "training",
    "number",
    "repeats",
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
    "seconds",
    "created_at",
    "finished_at",
)


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None, a JSON array for the per-seed lists."""
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list) else value


def to_csv(trainings: list[TrialOut]) -> str:
    """One row per training, in proposal order (curves left out; per-seed values as JSON
    arrays)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for trial in trainings:
        data = trial.model_dump(mode="json")
        writer.writerow([_cell(data[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()


def to_json(study: StudyOut, trials: list[TrialOut]) -> dict[str, Any]:
    """The study, its trainings (curves included) and its repeat asks."""
    return {
        "study": study.model_dump(mode="json"),
        "trainings": [t.model_dump(mode="json") for t in trials if t.source_trial_id is None],
        "repeats": [
            {"number": t.number, "training_id": t.source_trial_id, "state": t.state}
            for t in trials
            if t.source_trial_id is not None
        ],
    }
