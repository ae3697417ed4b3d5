"""The box GLD searches: an integer index grid or a continuous box, and Optuna params.

A space of only linear int distributions is an index grid (index = (value − low) / step),
GLD's discrete case. Any other int/float space is a continuous box, one coordinate per
parameter: the value, or its log10 when the distribution is log-scaled. Its int axes (and
stepped float axes) are rounded to their values (`snap`), so a mixed int × float space is
searched as one box, with log ints on a log scale. Radii are in these coordinates: index
units on a grid, value (or log10) units in a box, as ALGORITHMS.md states.
Categorical distributions are not GLD's: the sampler hands them to its independent sampler.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

Point = tuple[float, ...]
Numeric = IntDistribution | FloatDistribution

# The search-space convention shared by replay, service and workers.
GRID_PARAMS: tuple[str, str] = ("i_alpha", "j_eps")
LOG_PARAMS: tuple[str, str] = ("log10_alpha", "log10_eps")


def grid_distributions(shape: tuple[int, int]) -> dict[str, BaseDistribution]:
    """The Optuna search space of an n_alpha × n_eps index grid."""
    n_alpha, n_eps = shape
    if n_alpha < 1 or n_eps < 1:
        raise ValueError(f"grid shape must be positive, got {shape}")
    return {
        GRID_PARAMS[0]: IntDistribution(0, n_alpha - 1),
        GRID_PARAMS[1]: IntDistribution(0, n_eps - 1),
    }


def log_distributions(
    log10_alpha: tuple[float, float], log10_eps: tuple[float, float]
) -> dict[str, BaseDistribution]:
    """The Optuna search space of a continuous box in log10 α and log10 ε."""
    return {
        LOG_PARAMS[0]: FloatDistribution(*log10_alpha),
        LOG_PARAMS[1]: FloatDistribution(*log10_eps),
    }


def searchable(distribution: BaseDistribution) -> bool:
    """Whether GLD searches this distribution: int or float with more than one value."""
    return isinstance(distribution, Numeric) and not distribution.single()


@dataclass(frozen=True)
class Domain:
    """Parameter names (sorted), their bounds in search coordinates, and the kind of box."""

    names: tuple[str, ...]
    distributions: tuple[Numeric, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    discrete: bool

    @classmethod
    def from_distributions(cls, space: Mapping[str, BaseDistribution]) -> Domain:
        """The domain of a search space of int and float distributions."""
        if not space:
            raise ValueError("GLD needs at least one parameter")
        names = tuple(sorted(space))
        dists = tuple(space[name] for name in names)
        numeric: list[Numeric] = []
        for d in dists:
            if not isinstance(d, Numeric):
                raise ValueError("GLD supports int and float distributions only")
            numeric.append(d)
        discrete = all(isinstance(d, IntDistribution) and not d.log for d in numeric)
        low, high = [], []
        for d in numeric:
            if discrete:
                low.append(0.0)
                high.append(float((d.high - d.low) // d.step))
            else:
                low.append(_to_coord(d, d.low))
                high.append(_to_coord(d, d.high))
        return cls(names, tuple(numeric), tuple(low), tuple(high), discrete)

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.names)

    @property
    def shape(self) -> tuple[int, ...]:
        """Points per axis of a grid domain."""
        return tuple(int(h) + 1 for h in self.high)

    @property
    def signature(self) -> str:
        """A short fingerprint of names and distributions: which domain a GLD state is in."""
        pairs = zip(self.names, self.distributions, strict=True)
        data = json.dumps([[name, distribution_to_json(d)] for name, d in pairs])
        return hashlib.sha256(data.encode()).hexdigest()[:16]

    def snap(self, coords: np.ndarray) -> np.ndarray:
        """Coordinates (within bounds) moved to the nearest values Optuna can take: every
        axis of a grid, the int and stepped float axes of a box; other axes unchanged."""
        if self.discrete:
            return np.rint(coords)
        out = np.asarray(coords, dtype=float).copy()
        for axis, d in enumerate(self.distributions):
            if isinstance(d, IntDistribution) or d.step is not None:
                out[axis] = _to_coord(d, _on_grid(d, _from_coord(d, float(out[axis]))))
        return out

    def to_params(self, point: Point) -> dict[str, Any]:
        """Optuna param values of a point in search coordinates."""
        params: dict[str, Any] = {}
        for name, d, x in zip(self.names, self.distributions, point, strict=True):
            if self.discrete:
                params[name] = int(d.low + int(x) * d.step)
            elif isinstance(d, IntDistribution):
                params[name] = int(_on_grid(d, _from_coord(d, x)))
            else:
                value = _from_coord(d, x)
                if d.step:
                    value = d.low + round((value - d.low) / d.step) * d.step
                params[name] = min(max(value, d.low), d.high)
        return params

    def from_params(self, params: Mapping[str, Any]) -> Point | None:
        """Search coordinates of a param dict, or None when it does not lie in this domain
        (a param missing, not a number, out of bounds, or off an int grid)."""
        coords = []
        for name, d in zip(self.names, self.distributions, strict=True):
            value = params.get(name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                return None
            if not (d.low <= value <= d.high):
                return None
            if isinstance(d, IntDistribution) and (value - d.low) % d.step:
                return None
            if self.discrete:
                coords.append(int((value - d.low) // d.step))
            else:
                coords.append(_to_coord(d, float(value)))
        return tuple(coords)


def _to_coord(d: Numeric, value: float) -> float:
    return math.log10(value) if d.log else float(value)


def _from_coord(d: Numeric, x: float) -> float:
    return 10.0**x if d.log else float(x)


def _on_grid(d: Numeric, value: float) -> float:
    """The nearest value of a stepped (or int) distribution, within its bounds."""
    step = d.step or 1
    return min(max(d.low + round((value - d.low) / step) * step, d.low), d.high)
