"""Path and query parameters shared by the routes (bounded, so no input reaches the
database out of range)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**31 - 1

StudyId = Annotated[int, Path(ge=1, le=MAX_ID, description="Study id.")]
TrialId = Annotated[int, Path(ge=1, le=MAX_ID, description="Trial id.")]
ExperimentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Experiment id.")]
