"""The GLD planner itself: radii, candidates, restarts."""

from __future__ import annotations

import numpy as np

from studies.tuners import Domain, grid_distributions, log_distributions
from studies.tuners.gld_plan import GLDConfig, next_point
from studies.tuners.history import MemoryHistory
from studies.tuners.tabular import run_tabular
from tests.studies.helpers import valley


def test_radii_follow_algorithms_md() -> None:
    grid = Domain.from_distributions(grid_distributions((21, 21)))
    assert GLDConfig().radii(grid) == [16, 8, 4, 2, 1]
    box = Domain.from_distributions(log_distributions((-7.0, 4.0), (-8.0, 2.0)))
    radii = GLDConfig(resolution=0.05).radii(box)
    assert radii[0] == 5.5 and radii[-1] <= 0.05 < radii[-2]


def _iteration(coordinate: bool, seed: int) -> tuple[list, list]:
    domain = Domain.from_distributions(grid_distributions((21, 21)))
    history, state, points = MemoryHistory(), None, []
    for _ in range(6):
        point, state = next_point(domain, GLDConfig(coordinate=coordinate), state, history, seed)
        points.append(point)
    return points[0], points[1:]


def test_candidates_differ_from_the_centre_and_cgld_moves_one_axis() -> None:
    for seed in range(20):
        centre, candidates = _iteration(False, seed)
        assert all(c != centre for c in candidates)
        centre, candidates = _iteration(True, seed)
        assert all(c[1] == centre[1] and c[0] != centre[0] for c in candidates)  # axis 0 first


def test_cgld_restarts_in_a_diagonal_valley() -> None:
    values = valley()
    runs = [run_tabular("cgld", values, seed=s, target=0.5) for s in range(10)]
    assert np.mean([r.restarts for r in runs]) > 1
    assert all(not r.censored for r in runs)
