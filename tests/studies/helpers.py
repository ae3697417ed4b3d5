"""Synthetic grid tables for the studies tests."""

from __future__ import annotations

import numpy as np

from studies.grids import grid_values
from studies.table import GridTable

INDEX = np.meshgrid(np.arange(21.0), np.arange(21.0), indexing="ij")


def separable() -> np.ndarray:
    """(i − 12)² + (j − 5)²: one bowl, axis-aligned (the issue's separable table)."""
    i, j = INDEX
    return (i - 12) ** 2 + (j - 5) ** 2


def valley() -> np.ndarray:
    """A narrow diagonal valley i = j sloping to (15, 15): coordinate moves leave it."""
    i, j = INDEX
    return 20 * (i - j) ** 2 + (i - 15) ** 2


def additive() -> np.ndarray:
    """Row effect plus column effect, nothing else."""
    i, j = INDEX
    return 0.3 * (i - 7) ** 2 + np.sin(j) + 4


def band() -> np.ndarray:
    """Good only on one diagonal band (Adam's large-ε regime): α and ε coupled."""
    i, j = INDEX
    return np.minimum(90.0, 5 + 3 * (i - j) ** 2)


def as_table(values: np.ndarray, optimizer: str, chance: float | None = None) -> GridTable:
    """A GridTable on the paper's grid holding `values` as validation error."""
    alphas, epsilons = grid_values("paper")
    return GridTable(
        task="synthetic",
        optimizer=optimizer,
        alphas=alphas,
        epsilons=epsilons,
        error=np.asarray(values, dtype=float).tolist(),
        chance=chance,
    )
