"""The grid-table format: a complete (α, ε) grid of results, as written by `avatune grid`.

JSON object with `task`, `optimizer`, `fidelity`, `alphas`, `epsilons`, and `error`,
`test_error`, `diverged` as nested lists indexed ``[i_alpha][j_eps]``; optionally
`settings` (the optimizer's fixed settings, such as weight_decay) and `chance`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GridTable(BaseModel):
    """Validation error (percent) of every (α, ε) pair of a grid, for one task and optimizer."""

    model_config = ConfigDict(extra="allow")

    task: str
    optimizer: str
    fidelity: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Fixed optimizer settings, e.g. weight_decay."
    )
    alphas: list[float]
    epsilons: list[float]
    error: list[list[float]]
    test_error: list[list[float]] | None = None
    diverged: list[list[bool]] | None = None
    chance: float | None = Field(
        default=None, description="Chance-level error of the task, percent."
    )

    @model_validator(mode="after")
    def _check_shape(self) -> GridTable:
        shape = (len(self.alphas), len(self.epsilons))
        for name in ("error", "test_error", "diverged"):
            rows = getattr(self, name)
            if rows is None:
                continue
            if len(rows) != shape[0] or any(len(row) != shape[1] for row in rows):
                raise ValueError(f"{name} must be {shape[0]}×{shape[1]} (alphas × epsilons)")
        if any(not math.isfinite(v) for row in self.error for v in row):
            raise ValueError(
                "error must be finite everywhere: record diverged runs at chance level"
            )
        return self

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.alphas), len(self.epsilons)

    @classmethod
    def load(cls, path: str | Path) -> GridTable:
        return cls.model_validate(json.loads(Path(path).read_text()))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.model_dump(exclude_none=True), indent=1) + "\n")


def optimizer_label(name: str, settings: dict[str, Any] | None) -> str:
    """An optimizer's name with its fixed settings, e.g. ``adam (weight_decay 0.002)``."""
    if not settings:
        return name
    shown = ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in settings.items()
    )
    return f"{name} ({shown})"
