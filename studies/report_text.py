"""How report figures read as text: numbers, intervals, KM medians and ratios (report.md and
the demo's summary write them the same way). Inputs are JSON-safe metrics: None for missing
or infinite values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


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
