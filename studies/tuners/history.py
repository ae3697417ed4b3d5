"""What GLD knows about past proposals: known values, proposed points, its own iterations.

The same class serves a live Optuna study (rebuilt from the trial list on every ask) and
the fast tabular replay (updated in place), so both run the same planning code.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from studies.tuners.domain import Point


@dataclass
class _Record:
    iteration: int | None
    point: Point
    value: float | None = None


@dataclass
class MemoryHistory:
    """Proposals in order (GLD's own carry their iteration), and every known value."""

    _records: list[_Record] = field(default_factory=list)
    _iterations: list[int] = field(default_factory=list)
    _gld_index: list[int] = field(default_factory=list)
    _values: dict[Point, float] = field(default_factory=dict)
    _proposed: set[Point] = field(default_factory=set)

    def propose(self, point: Point, iteration: int | None = None) -> int:
        """Record a proposed point (iteration None: not proposed by GLD); returns its index."""
        self._records.append(_Record(iteration, point))
        self._proposed.add(point)
        if iteration is not None:
            if self._iterations and iteration < self._iterations[-1]:
                raise ValueError("GLD proposals must be recorded in iteration order")
            self._iterations.append(iteration)
            self._gld_index.append(len(self._records) - 1)
        return len(self._records) - 1

    def complete(self, index: int, value: float) -> None:
        """Record the value of proposal `index`; the lowest value seen is kept per point."""
        record = self._records[index]
        record.value = value
        known = self._values.get(record.point)
        if known is None or value < known:
            self._values[record.point] = value

    def value(self, point: Point) -> float | None:
        """Known value of a point, or None when it has no completed evaluation."""
        return self._values.get(point)

    def proposed(self) -> set[Point]:
        """Every point proposed so far, complete or not."""
        return self._proposed

    def best_since(self, iteration: int) -> tuple[Point, float] | None:
        """GLD's best completed proposal from `iteration` on (ties: the earliest)."""
        best: tuple[Point, float] | None = None
        start = bisect_left(self._iterations, iteration)
        for index in self._gld_index[start:]:
            record = self._records[index]
            if record.value is not None and (best is None or record.value < best[1]):
                best = (record.point, record.value)
        return best
