"""Two-way ANOVA of replicated grids and the interaction fraction on the trainable region."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from studies.anova import (
    interaction_fraction_masked,
    trainable_interaction,
    trainable_mask,
    two_way_anova,
)
from studies.separability import interaction_fraction

CHANCE = 90.0


def test_matches_statsmodels_on_a_random_replicated_table() -> None:
    rng = np.random.default_rng(0)
    n_seeds, n_alpha, n_eps = 3, 5, 4
    values = rng.normal(size=(n_seeds, n_alpha, n_eps)) + np.arange(n_alpha)[:, None] * 0.3
    s, a, e = np.meshgrid(*(np.arange(n) for n in values.shape), indexing="ij")
    frame = pd.DataFrame({"y": values.ravel(), "a": a.ravel(), "e": e.ravel(), "s": s.ravel()})
    table = anova_lm(ols("y ~ C(a) * C(e)", data=frame).fit(), typ=2)
    ours = two_way_anova(values)
    for name, row in (("alpha", "C(a)"), ("eps", "C(e)"), ("interaction", "C(a):C(e)")):
        assert getattr(ours, f"ss_{name}") == pytest.approx(table.loc[row, "sum_sq"], rel=1e-9)
        assert getattr(ours, f"df_{name}") == table.loc[row, "df"]
        assert getattr(ours, f"f_{name}") == pytest.approx(table.loc[row, "F"], rel=1e-9)
        assert getattr(ours, f"p_{name}") == pytest.approx(table.loc[row, "PR(>F)"], rel=1e-7)
    assert ours.df_residual == table.loc["Residual", "df"] == 40
    assert ours.ss_residual == pytest.approx(table.loc["Residual", "sum_sq"], rel=1e-9)
    assert ours.ms_residual == pytest.approx(ours.ss_residual / 40)


def test_additive_table_has_no_significant_interaction_but_a_diagonal_one_does() -> None:
    rng = np.random.default_rng(1)
    i, j = np.meshgrid(np.arange(6.0), np.arange(5.0), indexing="ij")
    additive = 0.5 * (i - 2) ** 2 + np.sin(j)
    p_values = np.array(
        [two_way_anova(additive + rng.normal(size=(3, 6, 5))).p_interaction for _ in range(300)]
    )
    assert 0.42 < p_values.mean() < 0.58  # p is uniform under the null
    assert np.mean(p_values < 0.05) < 0.09
    diagonal = (i - j) ** 2
    result = two_way_anova(diagonal + rng.normal(size=(3, 6, 5)))
    assert result.f_interaction > 20.0
    assert result.p_interaction < 1e-10


def test_zero_residual_gives_infinite_or_undefined_f() -> None:
    i, j = np.meshgrid(np.arange(3.0), np.arange(4.0), indexing="ij")
    result = two_way_anova(np.stack([i + j] * 2))  # additive, identical seeds
    assert result.ms_residual == 0.0
    assert result.f_alpha == math.inf and result.p_alpha == 0.0
    assert result.f_eps == math.inf and result.p_eps == 0.0
    assert math.isnan(result.f_interaction) and math.isnan(result.p_interaction)


def test_a_single_replicate_raises() -> None:
    with pytest.raises(ValueError, match="S >= 2"):
        two_way_anova(np.zeros((1, 4, 3)))


def test_full_mask_equals_the_complete_table_fraction() -> None:
    rng = np.random.default_rng(2)
    for shape in ((5, 4), (21, 21), (2, 7)):
        values = rng.normal(size=shape) * 10
        full = np.ones(shape, dtype=bool)
        assert interaction_fraction_masked(values, full) == pytest.approx(
            interaction_fraction(values), rel=1e-10
        )


def test_chance_plateau_is_masked_out() -> None:
    i, j = np.meshgrid(np.arange(8.0), np.arange(7.0), indexing="ij")
    values = 10.0 + 4.0 * i + 3.0 * j  # additive, all below 88
    values[:3, :3] = CHANCE  # a failed corner
    mask = trainable_mask(values, CHANCE)
    assert mask.sum() == 8 * 7 - 9
    assert trainable_interaction(values, CHANCE) == pytest.approx(0.0, abs=1e-12)
    assert interaction_fraction(values) > 0.2


def test_masked_fit_on_a_hand_checkable_l_shape() -> None:
    # cells (0,0), (0,1), (1,0) fit any additive model exactly; (1,1) pins the residual:
    # with all four cells, r = ±d/4 for d = F00 − F01 − F10 + F11, here d = 4 and Σr² = 4
    values = np.array([[0.0, 0.0], [0.0, 4.0]])
    l_shape = np.array([[True, True], [True, False]])
    assert interaction_fraction_masked(values, l_shape) == 0.0  # constant on the mask
    assert interaction_fraction_masked(values, np.ones((2, 2), dtype=bool)) == pytest.approx(
        4.0 / 12.0  # Σ(F − 1)² = 9 + 3
    )


def test_too_few_rows_or_columns_is_nan() -> None:
    values = np.arange(12.0).reshape(3, 4)
    one_row = np.zeros((3, 4), dtype=bool)
    one_row[1] = True
    assert math.isnan(interaction_fraction_masked(values, one_row))
    one_column = np.zeros((3, 4), dtype=bool)
    one_column[:, 2] = True
    assert math.isnan(interaction_fraction_masked(values, one_column))
    assert math.isnan(trainable_interaction(np.full((3, 4), CHANCE), CHANCE))
