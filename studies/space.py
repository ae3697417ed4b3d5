"""The (α, ε) search space: a named paper grid, an explicit grid, or log-scale bounds.

On a grid the tuners work in index space (``i_alpha``, ``j_eps``); on bounds in log10
space (``log10_alpha``, ``log10_eps``) — the convention of `studies.tuners`.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from studies.grids import GridName, grid_values

#: Values per axis of an explicit grid, and points of a whole grid.
MAX_AXIS = 201
MAX_GRID_POINTS = 20_000

GRID_PARAMS: tuple[str, str] = ("i_alpha", "j_eps")
LOG_PARAMS: tuple[str, str] = ("log10_alpha", "log10_eps")
#: Least high/low of log-scale bounds: a narrower interval has no room for a search (at
#: 1e10 and the next float, log10 gives one value twice and the interval has width 0).
MIN_BOUNDS_RATIO = 1.01


def _positive_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    if value <= 0:
        raise ValueError(
            f"must be > 0, got {value}: α and ε are positive; give e.g. 1e-3 instead of 0"
        )
    return value


#: A strictly positive, finite float (learning rates and ε).
PositiveFinite = Annotated[float, AfterValidator(_positive_finite)]


class Bounds(BaseModel):
    """A log-scale interval [low, high] of positive values."""

    model_config = ConfigDict(extra="forbid")

    low: PositiveFinite
    high: PositiveFinite

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not self.low < self.high:
            raise ValueError(
                f"bounds are inverted or empty (low={self.low}, high={self.high}): "
                "low must be smaller than high; swap them"
            )
        least = self.low * MIN_BOUNDS_RATIO
        if not self.high >= least:
            room = f"{least:.6g} here" if math.isfinite(least) else "no float here: lower low"
            raise ValueError(
                f"bounds too narrow for a log-scale search (low={self.low}, high={self.high}): "
                f"high must be at least {MIN_BOUNDS_RATIO} × low ({room}); widen them, or "
                "give an explicit grid for fixed values"
            )
        return self

    @property
    def log10(self) -> tuple[float, float]:
        """The interval in log10 units."""
        return math.log10(self.low), math.log10(self.high)


def _check_axis(name: str, values: list[float]) -> None:
    if len(values) < 1:
        raise ValueError(f"{name} must list at least one value")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing: sort them and drop duplicates")


class SearchSpace(BaseModel):
    """Where α and ε are searched: exactly one of `grid` (a preset), `alphas` + `epsilons`
    (an explicit grid) or `alpha` + `eps` (log-scale bounds)."""

    model_config = ConfigDict(extra="forbid")

    grid: GridName | None = Field(
        default=None, description="A named grid: 'paper' (21×21, §5.1) or 'coarse' (11×11)."
    )
    alphas: list[PositiveFinite] | None = Field(default=None, max_length=MAX_AXIS)
    epsilons: list[PositiveFinite] | None = Field(default=None, max_length=MAX_AXIS)
    alpha: Bounds | None = None
    eps: Bounds | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SearchSpace:
        forms = [
            self.grid is not None,
            self.alphas is not None or self.epsilons is not None,
            self.alpha is not None or self.eps is not None,
        ]
        if sum(forms) != 1:
            raise ValueError(
                "give exactly one of: `grid` (paper or coarse), `alphas` + `epsilons` "
                "(an explicit grid), or `alpha` + `eps` bounds ({low, high})"
            )
        if forms[1]:
            if self.alphas is None or self.epsilons is None:
                raise ValueError("an explicit grid needs both `alphas` and `epsilons`")
            _check_axis("alphas", self.alphas)
            _check_axis("epsilons", self.epsilons)
            size = len(self.alphas) * len(self.epsilons)
            if size > MAX_GRID_POINTS:
                raise ValueError(
                    f"grid too large: {size} points (at most {MAX_GRID_POINTS}); use fewer values"
                )
        if forms[2] and (self.alpha is None or self.eps is None):
            raise ValueError("bounds need both `alpha` and `eps` ({low, high} each)")
        return self

    @classmethod
    def preset(cls, name: GridName) -> SearchSpace:
        """The named paper grid."""
        return cls(grid=name)

    @property
    def is_grid(self) -> bool:
        """Whether the space is a finite grid (preset or explicit)."""
        return self.alpha is None

    def grid_axes(self) -> tuple[list[float], list[float]]:
        """(alphas, epsilons) of a grid space."""
        if self.grid is not None:
            return grid_values(self.grid)
        if self.alphas is None or self.epsilons is None:
            raise ValueError("a bounded space has no grid values")
        return list(self.alphas), list(self.epsilons)

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        """(n_alpha, n_eps) of a grid, None for bounds."""
        if not self.is_grid:
            return None
        alphas, epsilons = self.grid_axes()
        return len(alphas), len(epsilons)

    @property
    def size(self) -> int | None:
        """Number of grid points; None for a continuous space."""
        shape = self.grid_shape
        return None if shape is None else shape[0] * shape[1]

    def param_names(self) -> tuple[str, str]:
        """The tuner's parameter names in this space."""
        return GRID_PARAMS if self.is_grid else LOG_PARAMS

    def log10_bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(log10 α bounds, log10 ε bounds) of a bounded space."""
        if self.alpha is None or self.eps is None:
            raise ValueError("a grid space has no bounds")
        return self.alpha.log10, self.eps.log10

    def point(self, params: dict[str, Any]) -> tuple[float, float, int | None, int | None]:
        """(α, ε, i_alpha, j_eps) of a tuner's params (indices None off a grid); without an
        ε param (an optimizer that ignores ε) ε is the axis's first value or lower bound."""
        if self.is_grid:
            alphas, epsilons = self.grid_axes()
            i, j = int(params[GRID_PARAMS[0]]), int(params.get(GRID_PARAMS[1], 0))
            return alphas[i], epsilons[j], i, j
        assert self.alpha is not None and self.eps is not None
        alpha = min(max(10.0 ** float(params[LOG_PARAMS[0]]), self.alpha.low), self.alpha.high)
        log_eps = params.get(LOG_PARAMS[1])
        eps = self.eps.low if log_eps is None else 10.0 ** float(log_eps)
        return alpha, min(max(eps, self.eps.low), self.eps.high), None, None
