"""Two-way ANOVA of a replicated (α, ε) grid and the interaction fraction on its trainable cells.

The ANOVA asks whether the α × ε interaction is larger than seed noise; the masked interaction
fraction asks how much of the grid's variation off the chance plateau is non-additive (a flat
plateau of failed runs next to a working region is itself non-additive and would otherwise
dominate the fraction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Default margin, in percentage points below chance error. Per-seed errors are clipped to
# chance, so a plateau cell's mean sits at or just under chance by seed noise alone; 2 points
# clears that noise while still keeping cells that learned only a little.
MARGIN = 2.0


@dataclass(frozen=True)
class TwoWayAnova:
    """Sums of squares, degrees of freedom, F statistics and p-values of a balanced design."""

    ss_alpha: float
    ss_eps: float
    ss_interaction: float
    ss_residual: float
    df_alpha: int
    df_eps: int
    df_interaction: int
    df_residual: int
    f_alpha: float
    f_eps: float
    f_interaction: float
    p_alpha: float
    p_eps: float
    p_interaction: float
    ms_residual: float


def _f_test(ss: float, df: int, ms_residual: float, df_residual: int) -> tuple[float, float]:
    """F = MS / MS_residual and its upper-tail p; with no residual variation F = inf (p = 0)
    when the effect has variation, nan otherwise."""
    ms = ss / df
    if ms_residual == 0.0:
        return (math.inf, 0.0) if ms > 0.0 else (math.nan, math.nan)
    f = ms / ms_residual
    return f, float(stats.f.sf(f, df, df_residual))


def two_way_anova(values: np.ndarray) -> TwoWayAnova:
    """Two-way ANOVA with interaction of `values` [S, A, E] (S replicates per cell).

    Balanced closed form: SS_α = S·E·Σ(ȳ_i·· − ȳ)², SS_ε = S·A·Σ(ȳ_·j· − ȳ)²,
    SS_αε = S·Σ(ȳ_ij − ȳ_i· − ȳ_·j + ȳ)², SS_res = Σ(y_sij − ȳ_ij)² (types I–III coincide).
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 3:
        raise ValueError(f"values must be [S, A, E], got shape {y.shape}")
    n_seeds, n_alpha, n_eps = y.shape
    if n_seeds < 2:
        raise ValueError("two_way_anova needs S >= 2 replicates per cell to estimate the residual")
    if n_alpha < 2 or n_eps < 2:
        raise ValueError("two_way_anova needs at least 2 levels of alpha and of eps")
    grand = y.mean()
    cell = y.mean(axis=0)
    alpha_mean = cell.mean(axis=1)
    eps_mean = cell.mean(axis=0)
    ss_alpha = float(n_seeds * n_eps * np.sum((alpha_mean - grand) ** 2))
    ss_eps = float(n_seeds * n_alpha * np.sum((eps_mean - grand) ** 2))
    interaction = cell - alpha_mean[:, None] - eps_mean[None, :] + grand
    ss_interaction = float(n_seeds * np.sum(interaction**2))
    ss_residual = float(np.sum((y - cell) ** 2))
    df_alpha, df_eps = n_alpha - 1, n_eps - 1
    df_interaction = df_alpha * df_eps
    df_residual = n_alpha * n_eps * (n_seeds - 1)
    ms_residual = ss_residual / df_residual
    f_alpha, p_alpha = _f_test(ss_alpha, df_alpha, ms_residual, df_residual)
    f_eps, p_eps = _f_test(ss_eps, df_eps, ms_residual, df_residual)
    f_interaction, p_interaction = _f_test(ss_interaction, df_interaction, ms_residual, df_residual)
    return TwoWayAnova(
        ss_alpha=ss_alpha,
        ss_eps=ss_eps,
        ss_interaction=ss_interaction,
        ss_residual=ss_residual,
        df_alpha=df_alpha,
        df_eps=df_eps,
        df_interaction=df_interaction,
        df_residual=df_residual,
        f_alpha=f_alpha,
        f_eps=f_eps,
        f_interaction=f_interaction,
        p_alpha=p_alpha,
        p_eps=p_eps,
        p_interaction=p_interaction,
        ms_residual=ms_residual,
    )


def trainable_mask(mean: np.ndarray, chance: float, margin: float = MARGIN) -> np.ndarray:
    """Cells [A, E] whose error (percent) is below chance − margin: off the chance plateau."""
    return np.asarray(mean, dtype=float) < chance - margin


def interaction_fraction_masked(mean: np.ndarray, mask: np.ndarray) -> float:
    """Σr² / Σ(F − F̄)² over the masked cells, r the residual of the least-squares additive fit
    μ + a_i + b_j on those cells; 0 when the total is 0, nan with < 2 rows or columns in play.

    Rows and columns without a masked cell drop out. The fit is by `numpy.linalg.lstsq` on the
    indicator design, whose fitted values are unique even though the design is rank-deficient;
    on the full mask it reduces to row and column means (`separability.interaction_fraction`).
    """
    values = np.asarray(mean, dtype=float)
    keep = np.asarray(mask, dtype=bool)
    if keep.shape != values.shape or values.ndim != 2:
        raise ValueError(f"mean {values.shape} and mask {keep.shape} must be one [A, E] shape")
    rows, cols = np.nonzero(keep)
    used_rows, row_index = np.unique(rows, return_inverse=True)
    used_cols, col_index = np.unique(cols, return_inverse=True)
    if used_rows.size < 2 or used_cols.size < 2:
        return math.nan
    y = values[rows, cols]
    centred = y - y.mean()
    total = float(np.sum(centred**2))
    if total == 0.0:
        return 0.0
    design = np.zeros((y.size, 1 + used_rows.size + used_cols.size))
    design[:, 0] = 1.0
    design[np.arange(y.size), 1 + row_index] = 1.0
    design[np.arange(y.size), 1 + used_rows.size + col_index] = 1.0
    coef, *_ = np.linalg.lstsq(design, centred, rcond=None)
    residual = centred - design @ coef
    return float(np.sum(residual**2) / total)


def trainable_interaction(mean: np.ndarray, chance: float, margin: float = MARGIN) -> float:
    """The interaction fraction of the cells [A, E] more than `margin` points below chance."""
    return interaction_fraction_masked(mean, trainable_mask(mean, chance, margin))
