"""Where a trial falls on a study's α×ε heatmap: its grid cell, or a log-scale bin when the
study searches bounds instead of a grid."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from studies.specs import StudySpec

#: Bins per axis of the heatmap of a study over (α, ε) bounds.
BINS = 24


@dataclass(frozen=True)
class Landscape:
    """The heatmap's rows (α) and columns (ε): grid values, or bin centres over log bounds."""

    alphas: list[float]
    epsilons: list[float]
    #: log10 (low, high) of α and ε when binned; None on a grid.
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None

    @classmethod
    def of(cls, spec: StudySpec) -> Landscape:
        """The landscape of a study's search space."""
        if spec.space.is_grid:
            alphas, epsilons = spec.space.grid_axes()
            return cls(alphas, epsilons)
        alpha, eps = spec.space.log10_bounds()
        return cls(_centres(*alpha), _centres(*eps), (alpha, eps))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) = (α values, ε values)."""
        return len(self.alphas), len(self.epsilons)

    def empty(self) -> list[list[float | None]]:
        """A heatmap with no value yet."""
        return [[None] * len(self.epsilons) for _ in self.alphas]

    def cell(
        self, alpha: float, eps: float, i_alpha: int | None = None, j_eps: int | None = None
    ) -> tuple[int, int]:
        """The (row, column) of a trial: its grid indices, else the bin or nearest value."""
        rows, cols = self.shape
        on_grid = self.bounds is None and i_alpha is not None and j_eps is not None
        if on_grid and 0 <= i_alpha < rows and 0 <= j_eps < cols:  # type: ignore[operator]
            return i_alpha, j_eps  # type: ignore[return-value]
        if self.bounds is not None:
            return _bin(alpha, self.bounds[0]), _bin(eps, self.bounds[1])
        return _nearest(self.alphas, alpha), _nearest(self.epsilons, eps)


def _centres(low: float, high: float) -> list[float]:
    width = (high - low) / BINS
    return [float(f"{10 ** (low + (k + 0.5) * width):.4g}") for k in range(BINS)]


def _bin(value: float, bounds: tuple[float, float]) -> int:
    low, high = bounds
    if value <= 0 or not math.isfinite(value) or not high > low:  # zero width: one bin
        return 0
    k = math.floor((math.log10(value) - low) / (high - low) * BINS)
    return min(max(k, 0), BINS - 1)


def _nearest(values: list[float], value: float) -> int:
    if value <= 0 or not math.isfinite(value):
        return 0
    logs = [math.log10(v) for v in values]
    target = math.log10(value)
    k = bisect.bisect_left(logs, target)
    candidates = [c for c in (k - 1, k) if 0 <= c < len(logs)]
    return min(candidates, key=lambda c: abs(logs[c] - target))
