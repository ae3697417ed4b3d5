"""Acceptance on real tables made by `avatune grid` (fixtures; see fixtures/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.replay import ReplayResult, replay_tables
from studies.separability import best_alpha_drift, interaction_fraction, objective
from studies.table import GridTable

FIXTURES = Path(__file__).parent / "fixtures"
ADAM, AVAGRAD = FIXTURES / "adam.json", FIXTURES / "avagrad.json"

pytestmark = pytest.mark.skipif(
    not (ADAM.exists() and AVAGRAD.exists()),
    reason="fixture tables missing: run the commands in tests/studies/fixtures/README.md",
)


@pytest.fixture(scope="module")
def replay() -> ReplayResult:
    tables = [GridTable.load(ADAM), GridTable.load(AVAGRAD)]
    return replay_tables(tables, ["cgld"], 100, 0.5, processes=2, extra_deltas=[1.0])


@pytest.mark.xfail(
    strict=True,
    reason="not on mnist1d-mlp, 1000 steps, 3 seeds, 4000 validation examples: median CGLD "
    "cost to δ = 1.0 is 7 (Adam) vs 52 (AvaGrad); AvaGrad's best cell (35.07 % at α = 5, "
    "ε = 1e-3) is the only one within 1 pp of f*, Adam has 9 (fixtures/README.md)",
)
def test_avagrad_is_cheaper_to_tune_with_cgld_to_one_point(replay: ReplayResult) -> None:
    """The paper's §7 criterion: less than 1 pp suboptimality (δ = 1.0)."""
    costs = {t.name: t.tuners["cgld"].at(1.0).median for t in replay.tables}
    print("CGLD medians to δ = 1.0 on real tables", costs)
    assert costs["avagrad"] < costs["adam"]


@pytest.mark.xfail(
    strict=True,
    reason="not on mnist1d-mlp, 1000 steps, 3 seeds, 4000 validation examples: median CGLD "
    "cost to δ = 0.5 is 14.5 (Adam) vs 52 (AvaGrad); AvaGrad's best cell is isolated, "
    "1.1 pp below Adam's (fixtures/README.md)",
)
def test_avagrad_is_cheaper_to_tune_with_cgld_to_half_a_point(replay: ReplayResult) -> None:
    costs = {t.name: t.tuners["cgld"].median for t in replay.tables}
    print("CGLD medians to δ = 0.5 on real tables", costs)
    assert costs["avagrad"] < costs["adam"]


def test_avagrad_grid_is_more_separable_than_adam() -> None:
    adam, avagrad = GridTable.load(ADAM), GridTable.load(AVAGRAD)
    assert interaction_fraction(objective(avagrad)) < interaction_fraction(objective(adam))


def test_with_weight_decay_the_figure1_acceptance_holds_at_full_fidelity() -> None:
    """The coarse grids with L2 weight decay 2e-3, 1000 steps (fixtures/README.md)."""
    adam, avagrad = (GridTable.load(FIXTURES / f"{n}-l2.json") for n in ("adam", "avagrad"))
    assert adam.settings == avagrad.settings == {"weight_decay": 2e-3}
    adam_f, avagrad_f = objective(adam), objective(avagrad)
    assert best_alpha_drift(adam_f, adam.alphas) >= 3
    assert best_alpha_drift(avagrad_f, avagrad.alphas) <= 1
    assert interaction_fraction(adam_f) > 2 * interaction_fraction(avagrad_f)
