"""Suboptimality targets δ: absolute (in the objective's gap unit, pp for an error %) or
relative (a percentage of f*, for objectives such as bits per character).

`delta_gap` is the one place a δ becomes a distance above f*, so replays, the bootstrap (f*
re-derived per resample), robust drift and line searches all read δ the same way.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np

DeltaKind = Literal["absolute", "relative"]
DELTA_KINDS: tuple[DeltaKind, ...] = ("absolute", "relative")
#: The unit of a relative δ.
RELATIVE_UNIT = "% of f*"

Value = TypeVar("Value", float, np.ndarray)


def delta_gap(delta: float, f_star: Value, kind: DeltaKind = "absolute") -> Value:
    """How far above f* a δ target lies: δ itself, or δ/100·|f*| for a relative δ."""
    if kind == "absolute":
        return delta + 0 * f_star
    if kind == "relative":
        return delta / 100 * np.abs(f_star)
    raise ValueError(f"unknown δ kind {kind!r}; use one of {', '.join(DELTA_KINDS)}")


def delta_target(delta: float, f_star: Value, kind: DeltaKind = "absolute") -> Value:
    """The value a run must reach for δ-success: f* + `delta_gap`."""
    return f_star + delta_gap(delta, f_star, kind)


def delta_unit(kind: DeltaKind, gap_unit: str) -> str:
    """How a δ's unit reads: the objective's gap unit ("pp"), or "% of f*" when relative."""
    return RELATIVE_UNIT if kind == "relative" else gap_unit


def delta_text(delta: float, unit: str) -> str:
    """A δ with its unit, e.g. "δ = 0.5 pp" or "δ = 1 % of f*"."""
    return f"δ = {delta:g} {unit}".strip()
