"""Resampled mean tables: the plain seed bootstrap, checked against its closed form."""

from __future__ import annotations

import numpy as np

from studies.resample import resampled_means, seed_se


def test_one_seed_has_no_noise_to_resample() -> None:
    values = np.random.default_rng(0).normal(size=(1, 4, 5))
    tables = resampled_means(values, 7, np.random.default_rng(1))
    assert tables.shape == (7, 4, 5) and np.all(tables == values[0])


def test_moments_match_the_plain_bootstrap_closed_form() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(30.0, 2.0, size=(3, 4, 5))
    tables = resampled_means(values, 40_000, np.random.default_rng(3))
    mean = values.mean(axis=0)
    np.testing.assert_allclose(tables.mean(axis=0), mean, atol=0.05)
    # the mean of S draws from S values: variance (plug-in variance) / S
    expected = values.var(axis=0, ddof=0) / 3
    np.testing.assert_allclose(tables.var(axis=0), expected, rtol=0.05)


def test_values_stay_at_or_below_chance() -> None:
    values = np.array([[[89.0, 10.0]], [[90.0, 12.0]], [[90.0, 11.0]]])
    tables = resampled_means(values, 500, np.random.default_rng(4), chance=89.5)
    assert tables.max() <= 89.5
    assert set(np.round(tables[:, 0, 1], 6)) <= {round(v, 6) for v in _means_of_three(10, 12, 11)}


def _means_of_three(*values: float) -> set[float]:
    return {(a + b + c) / 3 for a in values for b in values for c in values}


def test_seed_se() -> None:
    values = np.array([[[1.0]], [[2.0]], [[4.0]]])
    assert seed_se(values)[0, 0] == np.std([1.0, 2.0, 4.0], ddof=1) / np.sqrt(3)
    assert np.isnan(seed_se(values[:1])).all()
