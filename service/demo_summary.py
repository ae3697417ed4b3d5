"""The demo's closing summary: a separability report's metrics as terminal tables."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from studies.report_text import interval as _ci
from studies.report_text import median_text as _median
from studies.report_text import number as _f
from studies.report_text import ratio_text as _ratio
from studies.report_text import units
from studies.table import optimizer_label


def grid_table(metrics: dict[str, Any]) -> Table:
    """Figure 1 in numbers: best point, interaction and best-α drift per optimizer."""
    table = Table(title="grids (Figure 1)")
    u = units(metrics)
    for column in (
        "optimizer",
        "grid × seeds",
        f"best {u.label} (SE)",
        "best α",
        "best ε",
        "interaction [95% CI]",
        "α* drift (robust)",
        f"line-search regret (worst{', ' + u.gap_unit if u.gap_unit else ''})",
    ):
        table.add_column(column, justify="left" if column == "optimizer" else "right")
    for name, grid in metrics["tables"].items():
        stats = grid.get("stats", {})
        noise = stats.get("noise", {})
        interaction = stats.get("interaction", {"ci": [None, None]})
        robust = stats.get("robust_drift", {}).get("value")
        worst = stats.get("line_search", {}).get("worst", {}).get("value")
        table.add_row(
            optimizer_label(name, grid.get("settings")),
            "×".join(str(n) for n in grid["shape"]) + f" × {grid.get('seeds', 1)}",
            f"{_f(grid['f_star'])} ({_f(noise.get('f_star_se'))})",
            f"{grid['best_alpha']:g}",
            f"{grid['best_eps']:g}",
            f"{_f(grid['interaction'], 3)} [{_ci(interaction['ci'], 3)}]",
            f"{_f(grid['drift_decades'], 1)} ({_f(robust, 1)})",
            _f(worst),
        )
    return table


def cost_table(metrics: dict[str, Any]) -> Table:
    """Figure 2 in numbers: median trials to reach δ per tuner, and the cost ratios."""
    names = list(metrics["tables"])
    reference = metrics["reference"]
    ratio_keys = [key for key in metrics["ratios"] if key.endswith(f"/{reference}")]
    table = Table(
        title="tuning cost: Kaplan–Meier median trials to within "
        f"{units(metrics).delta(metrics['delta'])} of the best ({metrics['seeds']} replays "
        "each; 95% CIs from the hierarchical bootstrap over training seeds)"
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
            row.append(f"{_median(cost)} [{_ci(cost['ci'], 1)}]{censored}")
        for key in ratio_keys:
            row.append(_ratio(metrics["ratios"][key].get(tuner)))
        table.add_row(*row)
    return table


def conclusion(metrics: dict[str, Any]) -> Text:
    """The conclusion and the three numbers that decide it."""
    decided = metrics.get("decided_by")
    text = Text.from_markup(
        f"[bold]Conclusion: {metrics.get('conclusion', '–')}[/] "
        f"({metrics.get('conclusion_reason', '')})"
    )
    if decided:
        reference, other = metrics["reference"], decided["other"]
        difference = decided["interaction_difference"]
        text.append(
            f"\n  interaction {reference} − {other}: {_f(difference['value'], 3)} "
            f"[{_ci(difference['ci'], 3)}]  (needs the CI below 0)"
            f"\n  CGLD cost ratio {other}/{reference}: {_ratio(decided['cgld_ratio'])}  "
            "(needs the CI above 1)"
            f"\n  seeds per cell: {decided['seeds']}  (needs ≥ 2: training noise in the CIs)"
        )
    return text


def summary(metrics: dict[str, Any]) -> Group:
    """Both tables, the conclusion with its numbers, and the verdict sentence."""
    return Group(
        grid_table(metrics),
        cost_table(metrics),
        conclusion(metrics),
        Text.from_markup(f"[bold]Verdict.[/] {metrics['verdict']}"),
    )
