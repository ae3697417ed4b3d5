"""The grid-table format: a complete (α, ε) grid of results, as written by `avatune grid`.

Format ``avatune-grid/2``: a JSON object with `task`, `optimizer`, `fidelity`, `alphas`,
`epsilons`, `seeds` (S) and, indexed ``[i_alpha][j_eps]``, `error` (the per-cell mean over
seeds of the chance-clipped per-seed errors), `test_error` and `diverged` (any seed
diverged); per seed, indexed ``[seed][i_alpha][j_eps]``, `error_seeds` (a diverged seed
at chance), `diverged_seeds` and `test_error_seeds`. Optionally `settings` (the
optimizer's fixed settings, such as weight_decay) and `chance`.

Version-1 tables (no `error_seeds`) still load, as S = 1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT = "avatune-grid/2"

Grid = list[list[float]]


class GridTable(BaseModel):
    """Validation error (percent) of every (α, ε) pair of a grid, for one task and optimizer."""

    model_config = ConfigDict(extra="allow")

    format: str = FORMAT
    task: str
    optimizer: str
    fidelity: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Fixed optimizer settings, e.g. weight_decay."
    )
    alphas: list[float]
    epsilons: list[float]
    seeds: int = Field(default=1, ge=1, description="Training seeds per cell (S).")
    error: Grid
    test_error: Grid | None = None
    diverged: list[list[bool]] | None = None
    error_seeds: list[Grid] | None = Field(
        default=None, description="Per-seed validation error [S][A][E]; a diverged seed at chance."
    )
    diverged_seeds: list[list[list[bool]]] | None = None
    test_error_seeds: list[Grid] | None = None
    chance: float | None = Field(
        default=None, description="Chance-level error of the task, percent."
    )

    @model_validator(mode="after")
    def _check_shape(self) -> GridTable:
        shape = (len(self.alphas), len(self.epsilons))
        for name in ("error", "test_error", "diverged"):
            _check_grid(name, getattr(self, name), shape)
        if self.error_seeds is None:
            if self.diverged_seeds is not None or self.test_error_seeds is not None:
                raise ValueError("diverged_seeds and test_error_seeds need error_seeds")
            self.seeds = 1
        else:
            self.seeds = len(self.error_seeds)
            if self.seeds < 1:
                raise ValueError("error_seeds must hold at least one seed")
            for name in ("error_seeds", "diverged_seeds", "test_error_seeds"):
                per_seed = getattr(self, name)
                if per_seed is None:
                    continue
                if len(per_seed) != self.seeds:
                    raise ValueError(f"{name} must hold {self.seeds} seeds, like error_seeds")
                for grid in per_seed:
                    _check_grid(name, grid, shape)
            _check_finite("error_seeds", np.asarray(self.error_seeds, dtype=float))
        _check_finite("error", np.asarray(self.error, dtype=float))
        return self

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.alphas), len(self.epsilons)

    def seed_errors(self) -> np.ndarray:
        """Per-seed objective [S, A, E]: a diverged seed at chance, clipped to chance.

        A version-1 table is its one seed (its per-cell `diverged` flag applies to it).
        """
        if self.error_seeds is None:
            values = np.asarray(self.error, dtype=float)[None]
            flags = None if self.diverged is None else np.asarray(self.diverged, bool)[None]
        else:
            values = np.asarray(self.error_seeds, dtype=float)
            flags = None if self.diverged_seeds is None else np.asarray(self.diverged_seeds, bool)
        return at_chance(values, flags, self.chance)

    @classmethod
    def from_seeds(
        cls,
        *,
        error_seeds: Sequence[Sequence[Sequence[float]]],
        diverged_seeds: Sequence[Sequence[Sequence[bool]]] | None = None,
        test_error_seeds: Sequence[Sequence[Sequence[float]]] | None = None,
        chance: float | None = None,
        **fields: Any,
    ) -> GridTable:
        """A v2 table from per-seed grids; the per-cell fields are derived from them."""
        errors = np.asarray(error_seeds, dtype=float)
        flags = (
            np.zeros(errors.shape, dtype=bool)
            if diverged_seeds is None
            else np.asarray(diverged_seeds, dtype=bool)
        )
        errors = at_chance(errors, flags, chance)
        tests = None
        if test_error_seeds is not None:
            tests = at_chance(np.asarray(test_error_seeds, dtype=float), flags, chance)
        return cls(
            seeds=int(errors.shape[0]),
            error=errors.mean(axis=0).tolist(),
            test_error=None if tests is None else tests.mean(axis=0).tolist(),
            diverged=flags.any(axis=0).tolist(),
            error_seeds=errors.tolist(),
            diverged_seeds=flags.tolist(),
            test_error_seeds=None if tests is None else tests.tolist(),
            chance=chance,
            **fields,
        )

    @classmethod
    def load(cls, path: str | Path) -> GridTable:
        return cls.model_validate(json.loads(Path(path).read_text()))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.model_dump(exclude_none=True), indent=1) + "\n")


def at_chance(values: np.ndarray, diverged: np.ndarray | None, chance: float | None) -> np.ndarray:
    """Diverged runs at chance and every value clipped to it (unchanged without a chance)."""
    if chance is None:
        return values
    if diverged is not None:
        values = np.where(diverged, chance, values)
    return np.minimum(values, chance)


def _check_grid(name: str, rows: Sequence[Sequence[Any]] | None, shape: tuple[int, int]) -> None:
    if rows is None:
        return
    if len(rows) != shape[0] or any(len(row) != shape[1] for row in rows):
        raise ValueError(f"{name} must be {shape[0]}×{shape[1]} (alphas × epsilons)")


def _check_finite(name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite everywhere: record diverged runs at chance level")


def optimizer_label(name: str, settings: dict[str, Any] | None) -> str:
    """An optimizer's name with its fixed settings, e.g. ``adam (weight_decay 0.002)``."""
    if not settings:
        return name
    shown = ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in settings.items()
    )
    return f"{name} ({shown})"
