"""The mechanism diagnostics of the atlas: what sets AvaGrad's normaliser γ, per ε.

For each ε column of a diagnosed grid the atlas takes the column's best α (lowest mean
objective) and that training's last record, averaged over seeds: γ, the fraction of
elements with v = 0, each tensor's share of Σq⁻², and the share the v = 0 elements carry,
zero_fraction · (γ/ε)² (each of them contributes ε⁻² to Σq⁻² = d/γ²). The README's
explanation ("weights with zero gradient make q ≈ ε dominate γ") predicts that share near 1
where the grid is not separable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studies.table import GridTable


@dataclass(frozen=True)
class ColumnDiagnostics:
    """The last diagnostics record of one ε column's best α, averaged over seeds."""

    eps: float
    alpha: float
    step: int
    gamma: float
    zero_fraction: float
    zero_share: float
    shares: dict[str, float]


@dataclass(frozen=True)
class DiagnosedGrid:
    """One diagnosed grid (task, optimizer, weight decay) column by column."""

    task: str
    optimizer: str
    weight_decay: float
    columns: list[ColumnDiagnostics]


def _last_records(training: dict[str, Any]) -> list[dict[str, Any]]:
    return [records[-1] for records in training.get("seeds", []) if records]


def column_diagnostics(
    table: GridTable, trainings: Sequence[dict[str, Any]]
) -> list[ColumnDiagnostics]:
    """Per ε column of `table`: the best α's last record, seeds averaged (columns without
    records left out)."""
    by_point = {(t["alpha"], t["eps"]): t for t in trainings}
    mean = table.seed_errors().mean(axis=0)
    out = []
    for j, eps in enumerate(table.epsilons):
        alpha = table.alphas[int(np.argmin(mean[:, j]))]
        training = by_point.get((alpha, eps))
        records = _last_records(training) if training else []
        if not records:
            continue
        gamma = float(np.mean([r["gamma"] for r in records]))
        zeros = float(np.mean([r["zero_fraction"] for r in records]))
        names = sorted({name for r in records for name in r["shares"]})
        shares = {n: float(np.mean([r["shares"].get(n, 0.0) for r in records])) for n in names}
        zero_share = float(np.mean([r["zero_fraction"] * (r["gamma"] / eps) ** 2 for r in records]))
        out.append(
            ColumnDiagnostics(
                eps=eps,
                alpha=alpha,
                step=int(records[0]["step"]),
                gamma=gamma,
                zero_fraction=zeros,
                zero_share=min(zero_share, 1.0) if math.isfinite(zero_share) else math.nan,
                shares=shares,
            )
        )
    return out


def diagnosed_grids(
    entries: Sequence[dict[str, Any]], tables: dict[tuple[str, str, str], GridTable]
) -> list[DiagnosedGrid]:
    """Every diagnosed grid: `entries` as the runner collected them, `tables` by (task, role,
    optimizer)."""
    out = []
    for entry in entries:
        table = tables.get((entry["task"], entry["role"], entry["optimizer"]))
        if table is None:
            continue
        out.append(
            DiagnosedGrid(
                task=entry["task"],
                optimizer=entry["optimizer"],
                weight_decay=float(entry["weight_decay"] or 0.0),
                columns=column_diagnostics(table, entry["trainings"]),
            )
        )
    return out


def as_json(grids: Sequence[DiagnosedGrid]) -> list[dict[str, Any]]:
    """JSON-ready diagnostics."""
    return [asdict(g) for g in grids]


def figure(grids: Sequence[DiagnosedGrid], path: Path, optimizer: str = "avagrad") -> Path | None:
    """γ/ε, the v = 0 share of Σq⁻² and the per-tensor shares against ε, a row per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [g for g in grids if g.optimizer == optimizer and g.columns]
    tasks = sorted({g.task for g in chosen})
    if not tasks:
        return None
    fig, axes = plt.subplots(
        len(tasks), 3, figsize=(15, 3.8 * len(tasks)), squeeze=False, layout="constrained"
    )
    for row, task in enumerate(tasks):
        left, middle, right = axes[row]
        for grid in (g for g in chosen if g.task == task):
            eps = [c.eps for c in grid.columns]
            label = f"λ = {grid.weight_decay:g}"
            left.plot(eps, [c.gamma / c.eps for c in grid.columns], marker="o", label=label)
            middle.plot(eps, [c.zero_share for c in grid.columns], marker="o", label=label)
            middle.plot(
                eps,
                [c.zero_fraction for c in grid.columns],
                linestyle=":",
                marker=".",
                label=f"{label}: fraction of v = 0",
            )
        main = max((g for g in chosen if g.task == task), key=lambda g: g.weight_decay)
        names = sorted({n for c in main.columns for n in c.shares})
        for name in names:
            right.plot(
                [c.eps for c in main.columns],
                [c.shares.get(name, 0.0) for c in main.columns],
                marker=".",
                label=name,
            )
        left.set(xscale="log", yscale="log", xlabel="ε", ylabel="γ / ε")
        left.set_title(f"{task}: γ relative to ε (best α per ε)")
        middle.set(xscale="log", xlabel="ε", ylabel="share", ylim=(-0.02, 1.02))
        middle.set_title("share of Σq⁻² carried by v = 0 elements")
        right.set(xscale="log", xlabel="ε", ylabel="share of Σq⁻²", ylim=(-0.02, 1.02))
        right.set_title(f"per tensor (λ = {main.weight_decay:g})")
        for ax in (left, middle, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary_lines(grids: Sequence[DiagnosedGrid], optimizer: str = "avagrad") -> list[str]:
    """A markdown table: per task, λ and ε, γ/ε, the v = 0 share and the heaviest tensor."""
    lines = [
        "| task | λ | ε | best α | γ / ε | fraction v = 0 | share of Σq⁻² at v = 0 "
        "| heaviest tensor (share) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for grid in grids:
        if grid.optimizer != optimizer:
            continue
        for c in grid.columns:
            heaviest = max(c.shares.items(), key=lambda kv: kv[1], default=("–", math.nan))
            lines.append(
                f"| {grid.task} | {grid.weight_decay:g} | {c.eps:g} | {c.alpha:g} "
                f"| {c.gamma / c.eps:.3g} | {c.zero_fraction:.3g} | {c.zero_share:.3g} "
                f"| {heaviest[0]} ({heaviest[1]:.2f}) |"
            )
    return lines
