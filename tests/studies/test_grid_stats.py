"""Grid statistics with bootstrap intervals: robust drift, line searches, noise, tunability."""

from __future__ import annotations

import numpy as np

from studies.grid_stats import grid_stats
from studies.resample import table_resamples
from studies.separability import robust_drift
from tests.studies.noisy_surfaces import coupled, replicate, separable


def test_robust_drift_ignores_columns_far_from_the_best() -> None:
    F = np.array([[1.0, 5.0, 50.0], [2.0, 1.2, 60.0], [3.0, 4.0, 40.0]])
    alphas = [1e-3, 1e-2, 1e-1]
    # within δ = 0.5 of f* = 1: columns 0 and 1, best α 1e-3 and 1e-2: one decade
    assert robust_drift(F, alphas, 0.5) == 1.0
    assert robust_drift(F, alphas, 0.1) == 0.0


def test_separable_and_coupled_surfaces() -> None:
    rng = np.random.default_rng(0)
    stats = {}
    for name, surface in (("avagrad", separable()), ("adam", coupled())):
        table = replicate(surface, name, rng)
        stats[name] = grid_stats(table, table_resamples(table, 100, 1), delta=0.5, default_eps=1e-8)
    ava, adam = stats["avagrad"], stats["adam"]
    assert ava.line_search.worst.value < 1.5 < adam.line_search.worst.value
    assert ava.line_search.cost == 11 + 11 - 1
    assert ava.trainable_interaction.value < adam.trainable_interaction.value
    assert ava.anova is not None and adam.anova is not None
    assert adam.anova.f_interaction > ava.anova.f_interaction
    lo, hi = ava.interaction.ci
    assert lo <= hi
    assert ava.noise.seeds == 3 and 0.2 < ava.noise.seed_se_median < 0.5  # sd 0.6 / sqrt 3
    assert ava.noise.f_star_se > 0
    curve = ava.tunability
    assert curve.ks[0] == 1 and all(
        a >= b for a, b in zip(curve.expected, curve.expected[1:], strict=False)
    )
    assert all(lo <= hi for lo, hi in zip(curve.lo, curve.hi, strict=True))
