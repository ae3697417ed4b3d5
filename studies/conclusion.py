"""The conclusion: is the reference optimizer's (α, ε) separable and cheaper to tune?

The rule, fixed before any result was looked at and calibrated on null pairs (one noisy
surface under two names, tests/studies/test_calibration.py):

- "supported" needs both: the 95 % interval of interaction(reference) − interaction(other)
  lies below 0, and the 95 % interval of the CGLD cost ratio other/reference lies above 1;
- "not supported" needs both the opposite: the interaction difference's interval above 0
  and the CGLD ratio's interval below 1;
- anything else is "inconclusive", and so is a grid with one seed per cell, whose
  intervals cannot hold training noise.

Both intervals come from the hierarchical bootstrap over training seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Conclusion = Literal["supported", "not supported", "inconclusive"]

RULE = (
    '"supported" needs both: the 95% CI of interaction({ref}) − interaction({oth}) below 0, '
    "and the 95% CI of the CGLD cost ratio {oth}/{ref} above 1 (both from the hierarchical "
    'bootstrap over training seeds). "not supported" needs both the opposite. Anything else, '
    'or one seed per cell, is "inconclusive".'
)


@dataclass(frozen=True)
class Evidence:
    """The numbers the rule reads."""

    interaction_difference_ci: tuple[float | None, float | None]
    cgld_ratio_ci: tuple[float | None, float | None]
    seeds: int  # the fewest seeds per cell of the two grids


def conclude(evidence: Evidence) -> tuple[Conclusion, str]:
    """The conclusion and a short reason."""
    if evidence.seeds < 2:
        return "inconclusive", "one seed per cell: the intervals cannot hold training noise"
    d_lo, d_hi = evidence.interaction_difference_ci
    r_lo, r_hi = evidence.cgld_ratio_ci
    less_coupled = d_hi is not None and d_hi < 0
    more_coupled = d_lo is not None and d_lo > 0
    cheaper = r_lo is not None and r_lo > 1
    dearer = r_hi is not None and r_hi < 1
    if less_coupled and cheaper:
        return "supported", "less coupled and cheaper to tune with CGLD, both beyond the noise"
    if more_coupled and dearer:
        return "not supported", "more coupled and dearer to tune with CGLD, both beyond the noise"
    parts = [
        "less coupled"
        if less_coupled
        else "more coupled"
        if more_coupled
        else "interaction difference within the noise",
        "cheaper with CGLD"
        if cheaper
        else "dearer with CGLD"
        if dearer
        else "CGLD cost ratio within the noise",
    ]
    return "inconclusive", "; ".join(parts)


def rule(reference: str, other: str) -> str:
    """The rule in words, with the optimizers' names."""
    return RULE.format(ref=reference, oth=other)
