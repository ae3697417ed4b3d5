"""The demo's closing summary: a separability report's metrics as terminal tables."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from studies.table import optimizer_label


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def grid_table(metrics: dict[str, Any]) -> Table:
    """Figure 1 in numbers: best point, interaction and best-α drift per optimizer."""
    table = Table(title="grids (Figure 1)")
    for column in (
        "optimizer",
        "grid",
        "best error %",
        "best α",
        "best ε",
        "interaction",
        "α* drift (decades)",
    ):
        table.add_column(column, justify="left" if column == "optimizer" else "right")
    for name, grid in metrics["tables"].items():
        table.add_row(
            optimizer_label(name, grid.get("settings")),
            "×".join(str(n) for n in grid["shape"]),
            _f(grid["f_star"]),
            f"{grid['best_alpha']:g}",
            f"{grid['best_eps']:g}",
            _f(grid["interaction"], 3),
            _f(grid["drift_decades"], 1),
        )
    return table


def cost_table(metrics: dict[str, Any]) -> Table:
    """Figure 2 in numbers: median trials to reach δ per tuner, and the cost ratios."""
    names = list(metrics["tables"])
    reference = metrics["reference"]
    ratio_keys = [key for key in metrics["ratios"] if key.endswith(f"/{reference}")]
    table = Table(
        title=f"tuning cost: median trials to within δ = {metrics['delta']:g} pp "
        f"of the best ({metrics['seeds']} replays each)"
    )
    table.add_column("tuner")
    for name in names:
        table.add_column(f"{name} [95% CI]", justify="right")
    for key in ratio_keys:
        table.add_column(f"{key} [95% CI]", justify="right")
    costs = metrics["costs"]
    for tuner in costs[names[0]]:
        row = [tuner]
        for name in names:
            cost = costs[name][tuner]
            censored = f", {cost['n_censored']} never" if cost["n_censored"] else ""
            row.append(
                f"{_f(cost['median'], 1)} [{_f(cost['ci'][0], 1)}–{_f(cost['ci'][1], 1)}]{censored}"
            )
        for key in ratio_keys:
            ratio = metrics["ratios"][key][tuner]
            row.append(f"{_f(ratio['ratio'])} [{_f(ratio['ci'][0])}–{_f(ratio['ci'][1])}]")
        table.add_row(*row)
    return table


def summary(metrics: dict[str, Any]) -> Group:
    """Both tables and the verdict sentence."""
    return Group(
        grid_table(metrics),
        cost_table(metrics),
        Text.from_markup(f"[bold]Verdict.[/] {metrics['verdict']}"),
    )
