"""The paper's Figure 1 at reduced fidelity: Adam's (α, ε) are coupled, AvaGrad's are not.

mnist1d-mlp, 500 steps, seed 0, on the coarse 11×11 grid and on an 11×11 sub-grid like
the prototype's in ALGORITHMS.md (which does not say which block it used): α 5e-4 … 50 ×
ε 1e-3 … 100 of the paper grid, an α window that holds both optimizers' good regions.
About 20 s for both on 2 cores.
Figures seen (interaction fraction / best-α drift in decades):

                prototype sub-grid   coarse, ε ≥ 1e-3   coarse, full (ε 1e-8 … 1e2)
    Adam        0.88 / 4             0.68 / 4           0.52 / 4
    AvaGrad     0.15 / 1             0.07 / 1           0.40 / 2

Seeds 1–3 on the sub-grid: Adam 0.88 / 3.7–4, AvaGrad 0.11–0.13 / 0.7–1.3 (one grid step
over a decade on seed 1). The prototype's figures (0.51 vs 0.13, 4 vs 1 decades) are
matched for AvaGrad, and Adam is more coupled still. On the full coarse grid the
separation fails below ε = 1e-3, on every seed tried (0–5, 500 and 1000 steps: AvaGrad
0.35–0.56 / 2–4). There AvaGrad's γ is set by the few weights whose gradient is always
exactly zero (ReLU pairs never active together: v = 0, q = 1/ε), so its effective step
shrinks with ε and its best α wanders.
The issue's full-coarse-grid acceptance (AvaGrad drift ≤ 1, Adam interaction > 2×
AvaGrad's) is therefore kept as an expected failure.
"""

from __future__ import annotations

import numpy as np
import pytest

from studies.grids import PAPER_ALPHAS, PAPER_EPSILONS, grid_values
from workers.trainer import TrialConfig, train

STEPS, SEED = 500, 0
SEPARABLE_FROM = 1e-3
#: A prototype-like sub-grid: an 11×11 block of the paper grid, α 5e-4 … 50, ε 1e-3 … 100.
SUB_ALPHAS = PAPER_ALPHAS[PAPER_ALPHAS.index(5e-4) :][:11]
SUB_EPSILONS = PAPER_EPSILONS[PAPER_EPSILONS.index(1e-3) :]


def interaction_fraction(grid: np.ndarray) -> float:
    """Σ r² / Σ (F − μ)² with r = F − μ − a_i − b_j (ALGORITHMS.md)."""
    mu = grid.mean()
    rows = grid.mean(1, keepdims=True) - mu
    cols = grid.mean(0, keepdims=True) - mu
    residual = grid - mu - rows - cols
    return float((residual**2).sum() / ((grid - mu) ** 2).sum())


def best_alpha_drift(grid: np.ndarray, alphas: list[float]) -> float:
    """Decades spanned by the best α of each ε column."""
    best = np.asarray(alphas)[grid.argmin(0)]
    return float(np.log10(best.max() / best.min()))


Grid = tuple[np.ndarray, list[float]]


@pytest.fixture(scope="module")
def grids() -> dict[str, dict[str, Grid]]:
    """Validation error (clipped at chance, 90 %) per optimizer on the coarse grid and on
    the prototype's sub-grid; points the two share are trained once."""
    coarse = grid_values("coarse")
    shapes = {"coarse": coarse, "sub": (SUB_ALPHAS, SUB_EPSILONS)}
    points = sorted({(a, e) for alphas, eps in shapes.values() for a in alphas for e in eps})
    out: dict[str, dict[str, Grid]] = {}
    for optimizer in ("adam", "avagrad"):
        results = train(
            "mnist1d-mlp", optimizer, [TrialConfig(a, e, SEED) for a, e in points], steps=STEPS
        )
        value = {p: min(r.objective, 90.0) for p, r in zip(points, results, strict=True)}
        out[optimizer] = {
            name: (np.array([[value[a, e] for e in eps] for a in alphas]), alphas)
            for name, (alphas, eps) in shapes.items()
        }
    return out


def _metrics(grid: Grid, columns: slice | list[int] = slice(None)) -> tuple[float, float]:
    values, alphas = grid
    sub = values[:, columns]
    return interaction_fraction(sub), best_alpha_drift(sub, alphas)


@pytest.mark.slow
def test_prototype_subgrid_adam_coupled_avagrad_separable(grids) -> None:
    """The acceptance's figures where the prototype measured them (4 vs 1 decades, 0.51 vs 0.13)."""
    adam_interaction, adam_drift = _metrics(grids["adam"]["sub"])
    ava_interaction, ava_drift = _metrics(grids["avagrad"]["sub"])
    assert adam_drift >= 3
    assert ava_drift <= 1
    assert adam_interaction > 2 * ava_interaction


@pytest.mark.slow
def test_coarse_grid_adam_coupled_avagrad_separable_from_eps_1e3(grids) -> None:
    _, epsilons = grid_values("coarse")
    columns = [j for j, e in enumerate(epsilons) if e >= SEPARABLE_FROM]
    adam_interaction, adam_drift = _metrics(grids["adam"]["coarse"], columns)
    ava_interaction, ava_drift = _metrics(grids["avagrad"]["coarse"], columns)
    assert adam_drift >= 3
    assert ava_drift <= 1
    assert adam_interaction > 2 * ava_interaction
    full_interaction, full_drift = _metrics(grids["adam"]["coarse"])
    assert full_drift >= 3 and full_interaction > 0.4
    for optimizer in ("adam", "avagrad"):  # both train well somewhere
        assert grids[optimizer]["coarse"][0].min() < 45


@pytest.mark.slow
@pytest.mark.xfail(
    reason="on mnist1d-mlp AvaGrad's best α wanders for ε < 1e-3 (see module doc)", strict=False
)
def test_full_coarse_grid_acceptance(grids) -> None:
    adam_interaction, adam_drift = _metrics(grids["adam"]["coarse"])
    ava_interaction, ava_drift = _metrics(grids["avagrad"]["coarse"])
    assert adam_drift >= 3 and ava_drift <= 1
    assert adam_interaction > 2 * ava_interaction
