"""A study's trainings as CSV or JSON, for analysis elsewhere.

A row is a training; the tuner's repeat asks of its point are counted in `repeats` (the
JSON form also lists them, each with the training whose result it took).

The routes stream both forms (`csv_chunks`, `json_chunks`) in constant memory: trials are
read a page at a time (keyset on the trial number), each page in its own short read
transaction, so a slow download holds no SQLite read snapshot (which would stop WAL
checkpoints) and no PostgreSQL transaction open. The consistency this gives: the study
(with its counts and best value) and the last trial number are read together at the
start, and the export holds exactly the trials numbered up to it (no trial twice, none
skipped; trials the tuner adds meanwhile are left out), each row as its page read it: a
training that finishes during the download shows the state its page saw. A study deleted
meanwhile ends the export early (still well-formed). `to_csv` and `to_json` render the
same output whole, from one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from service.db import Database
from service.repositories import trials as trial_rows
from studies.schemas import StudyOut, TrialOut

#: Trials per page (and per read transaction) of a streamed export.
PAGE_SIZE = 100

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
    "numerics",
    "created_at",
    "finished_at",
)


def _cell(value: Any) -> Any:
    """A CSV cell: empty for None, a JSON array for the per-seed lists."""
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list) else value


def _csv_lines(rows: list[list[Any]]) -> str:
    """CSV lines for `rows` (cells already formatted)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _csv_row(trial: TrialOut) -> list[Any]:
    data = trial.model_dump(mode="json")
    return [_cell(data[c]) for c in CSV_COLUMNS]


def to_csv(trainings: list[TrialOut]) -> str:
    """One row per training, in proposal order (curves left out; per-seed values as JSON
    arrays)."""
    return _csv_lines([list(CSV_COLUMNS), *(_csv_row(t) for t in trainings)])


def _repeat(number: int, training_id: int | None, state: str) -> dict[str, Any]:
    return {"number": number, "training_id": training_id, "state": state}


def to_json(study: StudyOut, trials: list[TrialOut]) -> dict[str, Any]:
    """The study, its trainings (curves included) and its repeat asks."""
    return {
        "study": study.model_dump(mode="json"),
        "trainings": [t.model_dump(mode="json") for t in trials if t.source_trial_id is None],
        "repeats": [
            _repeat(t.number, t.source_trial_id, t.state)
            for t in trials
            if t.source_trial_id is not None
        ],
    }


def dumps(value: Any) -> str:
    """`value` as JSON exactly as FastAPI's JSONResponse renders it (compact, no NaN)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _training_pages(
    db: Database, study_id: int, upto: int, *, curves: bool
) -> Iterator[list[TrialOut]]:
    """The study's trainings numbered up to `upto`, a page per read transaction."""
    after = -1
    while after < upto:
        with db.read() as conn:
            page = trial_rows.export_page(
                conn, study_id, after=after, upto=upto, limit=PAGE_SIZE, curves=curves
            )
        if not page:
            return
        after = page[-1].number
        yield page


def csv_chunks(db: Database, study_id: int, upto: int) -> Iterator[str]:
    """`to_csv` of the study's trainings numbered up to `upto`, a page at a time."""
    yield _csv_lines([list(CSV_COLUMNS)])
    for page in _training_pages(db, study_id, upto, curves=False):
        yield _csv_lines([_csv_row(t) for t in page])


def _rendered(page: list[TrialOut], first: bool) -> str:
    """A page of trainings as JSON array items (a comma before each but the very first)."""
    parts = [dumps(trial.model_dump(mode="json")) for trial in page]
    return ("" if first else ",") + ",".join(parts)


def json_chunks(db: Database, study: StudyOut, upto: int) -> Iterator[str]:
    """`to_json` of the study and its trials numbered up to `upto`, the same bytes as
    JSONResponse gives, a page at a time."""
    yield '{"study":' + dumps(study.model_dump(mode="json")) + ',"trainings":['
    first = True
    for page in _training_pages(db, study.id, upto, curves=True):
        yield _rendered(page, first)
        first = False
    yield '],"repeats":['
    after, sep = -1, ""
    while after < upto:
        with db.read() as conn:
            rows = trial_rows.repeat_asks_page(
                conn, study.id, after=after, upto=upto, limit=PAGE_SIZE * 10
            )
        if not rows:
            break
        after = rows[-1].number
        yield sep + ",".join(dumps(_repeat(*row)) for row in rows)
        sep = ","
    yield "]}"
