"""Replicated grid tables drawn from known surfaces: the truth is known, the noise is real.

Surfaces live on the coarse 11×11 grid (log10 α, log10 ε) and look like the real grids:
a chance plateau where α is too large, a basin with near-ties (several cells within 0.2 pp
of the minimum), and either axis-aligned (separable) or diagonal (coupled) structure.
Each seed adds independent Gaussian noise of `sd` pp (binomial noise of 4 000 validation
examples at 35 % error is 0.75 pp); a seed above chance is a diverged seed, at chance.
"""

from __future__ import annotations

import numpy as np

from studies.grids import grid_values
from studies.table import GridTable

CHANCE = 90.0
ALPHAS, EPSILONS = grid_values("coarse")
LA = np.log10(ALPHAS)[:, None]
LE = np.log10(EPSILONS)[None, :]


def mildly_coupled() -> np.ndarray:
    """The null surface: a basin whose best α moves one decade over ε, near-tied floor."""
    best = -1.0 + 0.1 * (LE + 4.0)
    error = 34.0 + 2.0 * np.maximum(np.abs(LA - best) - 0.4, 0.0) ** 2 + 0.3 * (LE + 2.0) ** 2 / 9
    return _with_plateau(error, LA > 1.2 + 0.1 * LE)


def separable() -> np.ndarray:
    """Additive: error = f(α) + g(ε), chance where α is too large for every ε."""
    error = 33.0 + 3.0 * (LA + 0.5) ** 2 + 0.4 * (LE + 3.0) ** 2 / 4
    return _with_plateau(error, np.broadcast_to(LA > 1.6, (LA.size, LE.size)))


def coupled() -> np.ndarray:
    """Adam-like: for large ε the good α follows α/ε; the best cells lie on a diagonal."""
    adaptive = 36.0 + 3.0 * (LA + 3.0) ** 2
    sgd_like = 33.0 + 3.0 * (LA - LE - 1.0) ** 2
    weight = 1.0 / (1.0 + np.exp(-(LE + 3.5) / 0.4))
    error = (1.0 - weight) * adaptive + weight * sgd_like
    return _with_plateau(error, LA - np.maximum(LE, -3.0) > 3.5)


def _with_plateau(error: np.ndarray, plateau: np.ndarray) -> np.ndarray:
    return np.where(plateau, CHANCE, np.minimum(error, CHANCE))


def replicate(
    surface: np.ndarray,
    optimizer: str,
    rng: np.random.Generator,
    *,
    seeds: int = 3,
    sd: float = 0.6,
) -> GridTable:
    """S noisy seeds of `surface`, as a v2 grid table."""
    noisy = surface[None] + rng.normal(0.0, sd, (seeds, *surface.shape))
    diverged = (noisy >= CHANCE) | (surface[None] >= CHANCE)
    return GridTable.from_seeds(
        error_seeds=np.where(diverged, CHANCE, noisy),
        diverged_seeds=diverged,
        chance=CHANCE,
        task="synthetic",
        optimizer=optimizer,
        alphas=ALPHAS,
        epsilons=EPSILONS,
    )
