"""The box GLD searches: an integer index grid or a continuous (log10) box, and Optuna params.

Integer distributions become an index grid (index = (value − low) / step); float
distributions become a continuous box, in log10 when the distribution is log-scaled.
A domain is either all-grid or all-continuous: GLD's radii mean one thing per domain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

Point = tuple[float, ...]

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


@dataclass(frozen=True)
class Domain:
    """Parameter names (sorted), their bounds in search coordinates, and the kind of box."""

    names: tuple[str, ...]
    distributions: tuple[BaseDistribution, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    discrete: bool

    @classmethod
    def from_distributions(cls, space: Mapping[str, BaseDistribution]) -> Domain:
        """The domain of a search space of only int, or only float, distributions."""
        if not space:
            raise ValueError("GLD needs at least one parameter")
        names = tuple(sorted(space))
        dists = tuple(space[name] for name in names)
        kinds = {isinstance(d, IntDistribution) for d in dists}
        if not all(isinstance(d, IntDistribution | FloatDistribution) for d in dists):
            raise ValueError("GLD supports int and float distributions only")
        if len(kinds) != 1:
            raise ValueError("GLD needs all-int (grid) or all-float (continuous) parameters")
        discrete = kinds == {True}
        low, high = [], []
        for d in dists:
            if discrete:
                low.append(0.0)
                high.append(float((d.high - d.low) // d.step))
            else:
                low.append(_to_coord(d, d.low))
                high.append(_to_coord(d, d.high))
        return cls(names, dists, tuple(low), tuple(high), discrete)

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.names)

    @property
    def shape(self) -> tuple[int, ...]:
        """Points per axis of a grid domain."""
        return tuple(int(h) + 1 for h in self.high)

    def to_params(self, point: Point) -> dict[str, Any]:
        """Optuna param values of a point in search coordinates."""
        params: dict[str, Any] = {}
        for name, d, x in zip(self.names, self.distributions, point, strict=True):
            if self.discrete:
                params[name] = int(d.low + int(x) * d.step)
            else:
                value = 10.0**x if d.log else float(x)
                if d.step:
                    value = d.low + round((value - d.low) / d.step) * d.step
                params[name] = min(max(value, d.low), d.high)
        return params

    def from_params(self, params: Mapping[str, Any]) -> Point | None:
        """Search coordinates of a param dict, or None when it does not lie in this domain."""
        coords = []
        for name, d in zip(self.names, self.distributions, strict=True):
            if name not in params:
                return None
            value = params[name]
            if not (d.low <= value <= d.high):
                return None
            if self.discrete:
                offset = value - d.low
                if offset % d.step:
                    return None
                coords.append(int(offset // d.step))
            else:
                coords.append(_to_coord(d, float(value)))
        return tuple(coords)


def _to_coord(d: BaseDistribution, value: float) -> float:
    assert isinstance(d, FloatDistribution)
    return math.log10(value) if d.log else float(value)
