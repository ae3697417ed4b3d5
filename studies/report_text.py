"""How report figures read as text: numbers, intervals, KM medians, ratios and units (report.md,
the dashboard and the demo's summary write them the same way). Inputs are JSON-safe metrics:
None for missing or infinite values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studies.deltas import DeltaKind, delta_text, delta_unit
from studies.objectives import objective_of, with_unit


@dataclass(frozen=True)
class Units:
    """How a report's numbers read: its objective, the unit of a gap, and the unit of δ."""

    objective: str  # e.g. "validation error", "validation bits per character"
    unit: str  # the objective's unit: "%", "bpc"
    gap_unit: str  # of a difference (regret, SE): "pp", "bpc"
    delta_kind: DeltaKind
    delta_unit: str  # "pp", or "% of f*" when δ is relative

    @property
    def label(self) -> str:
        """The objective with its unit, e.g. "validation error (%)"."""
        return with_unit(self.objective, self.unit)

    def delta(self, value: float) -> str:
        """A δ with its unit: "δ = 0.5 pp", "δ = 1 % of f*"."""
        return delta_text(value, self.delta_unit)


def units(metrics: Mapping[str, Any]) -> Units:
    """The units of a report's metrics; reports from before they were stored read as their
    first grid's task says, with an absolute δ."""
    tables = metrics.get("tables") or {}
    goal = objective_of(next(iter(tables.values()), {}).get("task", ""))
    stored = metrics.get("objective") or {}
    kind = metrics.get("delta_kind", "absolute")
    gap = stored.get("gap_unit", goal.gap_unit)
    return Units(
        objective=stored.get("name", goal.name),
        unit=stored.get("unit", goal.unit),
        gap_unit=gap,
        delta_kind=kind,
        delta_unit=metrics.get("delta_unit") or delta_unit(kind, gap),
    )


def number(value: float | None, digits: int = 2) -> str:
    """`value` with `digits` decimals; a dash when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def interval(ci: Sequence[float | None], digits: int = 2) -> str:
    """lo–hi; an interval open above (a censored bound) reads lo–∞."""
    lo, hi = ci
    if hi is None and lo is not None:
        return f"{number(lo, digits)}–∞"
    return f"{number(lo, digits)}–{number(hi, digits)}"


def median_text(cost: dict[str, Any]) -> str:
    """A KM median, or "> bound" when censored runs leave it open."""
    if cost.get("censored_median"):
        return f"> {number(cost.get('median_bound'), 1)}"
    return number(cost["median"], 1)


def ratio_text(ratio: dict[str, Any] | None) -> str:
    """A ratio with its CI, "> x [..]" / "< x [..]" for a bound, a dash when there is none."""
    if ratio is None or ratio["ratio"] is None:
        return "–"
    bound = f"{ratio['bound']} " if ratio.get("bound") else ""
    return f"{bound}{number(ratio['ratio'])} [{interval(ratio['ci'])}]"
