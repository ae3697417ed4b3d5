"""Two line searches instead of a grid search: the operational test of separability.

From a start column ε₀ = ε_j0, search every α of that column and keep the argmin, then search
every ε of that α's row and keep the argmin; further rounds alternate the same way (α on the
new column, then ε on the new row). On a separable (additive) table one round finds the
global minimum from any start; the regret found − min F measures how much the coupling of
α and ε costs a tuner that treats them independently. Ties go to the first (lowest) index,
as `numpy.argmin` breaks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LineSearch:
    """Where the line searches from column `start` end, what they find and what they cost."""

    start: int
    alpha_index: int
    eps_index: int
    found: float
    regret: float
    cost: int  # distinct cells evaluated


def _check_rounds(rounds: int) -> None:
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")


def two_line_search(F: np.ndarray, start: int, rounds: int = 1) -> LineSearch:
    """Alternate an α line search and an ε line search `rounds` times on F [A, E] from `start`.

    The cost counts each distinct cell once, so a first round costs A + E − 1.
    """
    values = np.asarray(F, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"F must be [A, E], got shape {values.shape}")
    if not 0 <= start < values.shape[1]:
        raise ValueError(f"start {start} is outside the {values.shape[1]} eps columns")
    _check_rounds(rounds)
    evaluated = np.zeros(values.shape, dtype=bool)
    eps_index = start
    alpha_index = 0
    for _ in range(rounds):
        evaluated[:, eps_index] = True
        alpha_index = int(np.argmin(values[:, eps_index]))
        evaluated[alpha_index, :] = True
        eps_index = int(np.argmin(values[alpha_index, :]))
    found = float(values[alpha_index, eps_index])
    return LineSearch(
        start=start,
        alpha_index=alpha_index,
        eps_index=eps_index,
        found=found,
        regret=found - float(values.min()),
        cost=int(evaluated.sum()),
    )


def line_search_regrets(F: np.ndarray, rounds: int = 1) -> np.ndarray:
    """The regret of `two_line_search` from every start column of F [..., A, E]: [..., E].

    Each α line search on column j lands on that column's argmin and each ε line search on
    row i on that row's argmin, so the rounds compose the two argmin maps as index lookups.
    """
    values = np.asarray(F, dtype=float)
    if values.ndim < 2:
        raise ValueError(f"F must be [..., A, E], got shape {values.shape}")
    _check_rounds(rounds)
    n_eps = values.shape[-1]
    column_best = np.argmin(values, axis=-2)  # [..., E]: best α of each ε column
    row_best = np.argmin(values, axis=-1)  # [..., A]: best ε of each α row
    eps_index = np.broadcast_to(np.arange(n_eps), column_best.shape)
    for _ in range(rounds):
        alpha_index = np.take_along_axis(column_best, eps_index, axis=-1)
        eps_index = np.take_along_axis(row_best, alpha_index, axis=-1)
    flat = values.reshape(*values.shape[:-2], -1)
    found = np.take_along_axis(flat, alpha_index * n_eps + eps_index, axis=-1)
    return found - values.min(axis=(-2, -1))[..., None]
