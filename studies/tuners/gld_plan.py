"""GLD and coordinate GLD as a pure planner: the next point from (config, state, history).

ALGORITHMS.md "Tuners". One iteration n draws, around its centre x, the K+1 candidates
y_k at radii R·2^−k (k = 0..K); GLD moves in a random direction of the unit ball, CGLD
along axis n mod d only. A candidate is clipped to the domain and snapped to values Optuna
can take (`Domain.snap`: the grid's indices, a box's int and stepped axes). All candidates
of an iteration are drawn when it begins, from a generator seeded by (seed, n), so they can
be handed to parallel workers together.

When an iteration's candidates are all handed out, the next one begins around the best
completed point since the last (re)start — which is GLD's x ← argmin{x, y_0..y_K} when
every candidate is complete, and the best known point when some are still running.

Restarts (**choice** of ALGORITHMS.md): on a grid, when GLD has had one iteration (CGLD
two) without improvement and every radius-1 neighbour of x (8 for GLD, 4 for CGLD) has a
known value no better than x's, the search restarts at a uniformly random point never
proposed. On a continuous box it restarts after `patience` iterations without improvement.
A start or restart point is proposed first, together with its iteration's candidates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import product
from typing import Any, Protocol

import numpy as np

from studies.tuners.domain import Domain, Point

MAX_REDRAWS = 100


class History(Protocol):
    """The queries GLD makes about past proposals (see studies.tuners.history)."""

    def value(self, point: Point) -> float | None: ...

    def proposed(self) -> set[Point]: ...

    def best_since(self, iteration: int) -> tuple[Point, float] | None: ...


@dataclass(frozen=True)
class GLDConfig:
    """Radii and restart rule; None means the default of ALGORITHMS.md for the domain."""

    coordinate: bool = False
    radius: float | None = None
    min_radius: float | None = None
    resolution: float = 0.05
    patience: int | None = None

    def radii(self, domain: Domain) -> list[float]:
        """R·2^−k for k = 0..K, K = ⌈log2(R/r)⌉: 16, 8, 4, 2, 1 on a 21×21 grid."""
        widest = max(h - lo for lo, h in zip(domain.low, domain.high, strict=True))
        if domain.discrete:
            big = self.radius or float(2 ** max(0, math.floor(math.log2(max(widest, 1.0)))))
            small = self.min_radius or 1.0
        else:
            big = self.radius or max(widest / 2.0, 1e-12)
            small = self.min_radius or self.resolution
        if big <= 0 or small <= 0:
            raise ValueError("GLD radii must be positive")
        k_max = max(0, math.ceil(math.log2(big / small) - 1e-9))
        return [big * 2.0**-k for k in range(k_max + 1)]

    def restart_patience(self, domain: Domain) -> int:
        """Non-improving iterations before a restart may happen."""
        if self.patience is not None:
            return self.patience
        per_axis = 1 if domain.discrete else 4
        return per_axis * (domain.dim if self.coordinate else 1)


@dataclass
class PlanState:
    """Everything GLD carries between asks; JSON-able (stored with each trial)."""

    seed: int
    it: int
    seg: int
    center: list[float]
    center_value: float | None
    candidates: list[list[float]]
    handed: int
    stall: int
    restarts: int

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON-able data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanState:
        """A state from `to_dict` data."""
        return cls(**data)


def next_point(
    domain: Domain, config: GLDConfig, state: PlanState | None, history: History, seed: int
) -> tuple[Point, PlanState]:
    """The next point to evaluate and the state after proposing it (`seed` only starts a run)."""
    if state is None:
        rng = np.random.default_rng([seed, 0, 1])
        start = _uniform_point(domain, rng)
        state = _begin(domain, config, seed, 0, 0, start, None, 0, 0, with_start=True)
    elif state.handed >= len(state.candidates):
        state = _advance(domain, config, state, history)
    else:
        state = PlanState.from_dict(state.to_dict())
    point = state.candidates[state.handed]
    state.handed += 1
    return _as_point(domain, point), state


def _advance(domain: Domain, config: GLDConfig, state: PlanState, history: History) -> PlanState:
    best = history.best_since(state.seg)
    if best is None:
        center, value, improved = _as_point(domain, state.center), state.center_value, False
    else:
        center, value = best
        improved = state.center_value is None or value < state.center_value
    stall = 0 if improved else state.stall + 1
    it = state.it + 1
    if _should_restart(domain, config, center, value, stall, history):
        rng = np.random.default_rng([state.seed, it, 1])
        fresh = _unproposed_point(domain, history, rng)
        return _begin(domain, config, state.seed, it, it, fresh, None, 0, state.restarts + 1, True)
    return _begin(domain, config, state.seed, it, state.seg, center, value, stall, state.restarts)


def _should_restart(
    domain: Domain,
    config: GLDConfig,
    center: Point,
    value: float | None,
    stall: int,
    history: History,
) -> bool:
    if stall < config.restart_patience(domain):
        return False
    if not domain.discrete:
        return True
    if value is None:
        return False
    for neighbour in _neighbours(domain, center, config.coordinate):
        known = history.value(neighbour)
        if known is None or known < value:
            return False
    return True


def _begin(
    domain: Domain,
    config: GLDConfig,
    seed: int,
    it: int,
    seg: int,
    center: Point,
    center_value: float | None,
    stall: int,
    restarts: int,
    with_start: bool = False,
) -> PlanState:
    rng = np.random.default_rng([seed, it, 0])
    axis = it % domain.dim if config.coordinate else None
    candidates = [list(center)] if with_start else []
    candidates += [
        list(_candidate(domain, center, radius, axis, rng)) for radius in config.radii(domain)
    ]
    return PlanState(seed, it, seg, list(center), center_value, candidates, 0, stall, restarts)


def _candidate(
    domain: Domain, x: Point, radius: float, axis: int | None, rng: np.random.Generator
) -> Point:
    center = np.asarray(x, dtype=float)
    y = x
    for _ in range(MAX_REDRAWS):
        step = np.zeros(domain.dim)
        if axis is None:
            direction = rng.standard_normal(domain.dim)
            direction /= np.linalg.norm(direction) or 1.0
            step = direction * radius * rng.uniform() ** (1.0 / domain.dim)
        else:
            step[axis] = radius * rng.uniform(-1.0, 1.0)
        y = _as_point(domain, domain.snap(np.clip(center + step, domain.low, domain.high)))
        if y != x:
            break
    return y


def _neighbours(domain: Domain, x: Point, coordinate: bool) -> list[Point]:
    if coordinate:
        steps = [
            tuple(s if a == b else 0 for b in range(domain.dim))
            for a in range(domain.dim)
            for s in (-1, 1)
        ]
    else:
        steps = [s for s in product((-1, 0, 1), repeat=domain.dim) if any(s)]
    out = []
    for s in steps:
        y = tuple(int(c) + d for c, d in zip(x, s, strict=True))
        if all(0 <= c <= h for c, h in zip(y, domain.high, strict=True)):
            out.append(y)
    return out


def _uniform_point(domain: Domain, rng: np.random.Generator) -> Point:
    if domain.discrete:
        return tuple(int(rng.integers(0, n)) for n in domain.shape)
    return tuple(float(v) for v in domain.snap(rng.uniform(domain.low, domain.high)))


def _unproposed_point(domain: Domain, history: History, rng: np.random.Generator) -> Point:
    if not domain.discrete:
        return _uniform_point(domain, rng)
    seen = history.proposed()
    free = [p for p in product(*(range(n) for n in domain.shape)) if p not in seen]
    if not free:
        return _uniform_point(domain, rng)
    return free[int(rng.integers(0, len(free)))]


def _as_point(domain: Domain, values: Any) -> Point:
    if domain.discrete:
        return tuple(int(v) for v in values)
    return tuple(float(v) for v in values)
