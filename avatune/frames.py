"""Trials as a pandas DataFrame (pandas is the optional extra ``avatune[pandas]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from studies.schemas import TrialOut

if TYPE_CHECKING:
    import pandas as pd

#: The DataFrame's columns: every field of a trial record, in its order.
COLUMNS: tuple[str, ...] = tuple(TrialOut.model_fields)


def _pandas() -> Any:
    """pandas, imported on first use; ImportError saying how to install it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "trials_frame needs pandas: pip install 'avatune[pandas]' (or use study_trials, "
            "which returns records)"
        ) from None
    return pandas


def trials_frame(trials: Sequence[TrialOut]) -> pd.DataFrame:
    """One row per trial, a column per `TrialOut` field (times as UTC timestamps, per-seed
    values and curves as lists)."""
    pandas = _pandas()
    frame = pandas.DataFrame([t.model_dump() for t in trials], columns=list(COLUMNS))
    for column in ("created_at", "finished_at", "lease_expires_at"):
        frame[column] = pandas.to_datetime(frame[column], utc=True)
    return frame
