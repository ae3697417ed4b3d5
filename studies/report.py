"""The separability report: metrics, a verdict with its numbers, report.md and PNG figures.

`compute_metrics` is what the service stores (JSON-able: NaN and ∞ become null);
`build_report` also writes ``report.md``, ``metrics.json`` and the figures of
`studies.figures` as PNG files into a folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studies import figures
from studies.replay import ReplayResult, TableReplay, delta_key, replay_tables, table_names
from studies.separability import (
    best_alpha_drift,
    best_alphas,
    bootstrap_ci,
    interaction_fraction,
    objective,
    ratio_ci,
)
from studies.table import GridTable, optimizer_label
from studies.tuners import TUNERS

FORMAT = "avatune-report/1"
FIGURES = {
    "figure1": "figure1_heatmaps.png",
    "figure2_costs": "figure2_costs.png",
    "figure2_curves": "figure2_curves.png",
}


def compute_metrics(
    tables: Sequence[GridTable],
    replay: ReplayResult,
    *,
    reference: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Interaction, drift, median costs with CIs, cost ratios vs `reference`, and a verdict."""
    names = [t.name for t in replay.tables]
    if len(names) != len(tables):
        raise ValueError("the replay must hold one entry per table, in the same order")
    reference = reference or ("avagrad" if "avagrad" in names else names[-1])
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not among the tables {names}")
    grids = {
        name: _grid_metrics(t, replay.table(name)) for name, t in zip(names, tables, strict=True)
    }
    by_delta = {
        delta_key(d): {t.name: _cost_metrics(t, d, seed) for t in replay.tables}
        for d in replay.deltas
    }
    ratios = {
        f"{other}/{reference}": _ratios(
            replay.table(other), replay.table(reference), replay.delta, seed
        )
        for other in names
        if other != reference
    }
    metrics = {
        "format": FORMAT,
        "delta": replay.delta,
        "deltas": replay.deltas,
        "seeds": replay.seeds,
        "reference": reference,
        "tables": grids,
        "costs": by_delta[delta_key(replay.delta)],
        "costs_by_delta": by_delta,
        "ratios": ratios,
    }
    metrics["verdict"] = verdict(metrics)
    return _json_safe(metrics)


def verdict(metrics: dict[str, Any]) -> str:
    """One sentence: is the reference more separable and cheaper to tune, with the numbers."""
    reference = metrics["reference"]
    others = [n for n in metrics["tables"] if n != reference]
    if not others:
        return f"Only {reference} was measured: nothing to compare."
    other = "adam" if "adam" in others else others[0]
    ref, oth = metrics["tables"][reference], metrics["tables"][other]
    tuner = (
        "cgld" if "cgld" in metrics["costs"][reference] else next(iter(metrics["costs"][reference]))
    )
    ratio = metrics["ratios"][f"{other}/{reference}"][tuner]
    lo, hi = ratio["ci"]
    separable = ref["interaction"] < oth["interaction"]
    if separable and lo is not None and lo > 1:
        conclusion = "supported"
    elif not separable or (hi is not None and hi < 1):
        conclusion = "not supported"
    else:
        conclusion = "inconclusive"
    return (
        f"{reference} vs {other}: interaction {_f(ref['interaction'])} vs "
        f"{_f(oth['interaction'])}, best-α drift {_f(ref['drift_decades'], 1)} vs "
        f"{_f(oth['drift_decades'], 1)} decades; {tuner.upper()} needs median "
        f"{_f(metrics['costs'][reference][tuner]['median'], 1)} vs "
        f"{_f(metrics['costs'][other][tuner]['median'], 1)} trials to δ = {metrics['delta']:g} "
        f"(ratio {other}/{reference} {_f(ratio['ratio'])}, 95% CI {_f(lo)}–{_f(hi)}) — "
        f"the claim that {reference}'s α and ε are separable and cheaper to tune is "
        f"{conclusion} here."
    )


def build_report(
    tables: Sequence[GridTable],
    replay: ReplayResult | None = None,
    out_dir: str | Path | None = None,
    *,
    reference: str | None = None,
    tuners: Sequence[str] = TUNERS,
    seeds: int = 100,
    deltas: Sequence[float] = (0.5, 1.0),
    processes: int | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write report.md, metrics.json and PNG figures to `out_dir`; return the metrics.

    Without a replay, one is run first (`tuners`, `seeds`, `deltas` — the first is the main
    δ — in `processes`) and saved as replay.json next to the report.
    """
    if out_dir is None:
        raise TypeError("build_report needs out_dir")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if replay is None:
        if not deltas:
            raise ValueError("at least one δ is needed")
        replay = replay_tables(
            tables,
            tuners,
            seeds,
            deltas[0],
            processes,
            extra_deltas=deltas[1:],
            names=names or table_names(tables),
        )
        replay.save(out / "replay.json")
    metrics = compute_metrics(tables, replay, reference=reference)
    names = [t.name for t in replay.tables]
    figures.render_png(figures.heatmaps(tables, names), out / FIGURES["figure1"])
    figures.render_png(figures.cost_bars(replay), out / FIGURES["figure2_costs"])
    figures.render_png(figures.suboptimality_curves(replay), out / FIGURES["figure2_curves"])
    metrics["figures"] = dict(FIGURES)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out / "report.md").write_text(markdown(metrics))
    return metrics


def markdown(metrics: dict[str, Any]) -> str:
    """report.md: verdict, grid metrics, cost tables, figures."""
    names = list(metrics["tables"])
    reference = metrics["reference"]
    lines = ["# Separability report", "", f"**Verdict.** {metrics['verdict']}", ""]
    lines += [
        "## Grids (Figure 1)",
        "",
        "| optimizer | task | grid | best error % | best α | best ε | interaction | "
        "best-α drift (decades) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, g in metrics["tables"].items():
        lines.append(
            f"| {optimizer_label(name, g.get('settings'))} | {g['task']} "
            f"| {g['shape'][0]}×{g['shape'][1]} | {_f(g['f_star'], 2)} | {g['best_alpha']:g} "
            f"| {g['best_eps']:g} | {_f(g['interaction'])} | {_f(g['drift_decades'], 1)} |"
        )
    lines += [
        "",
        "Interaction: share of the grid's variance not explained by α and ε main "
        "effects (0 = separable). Drift: decades spanned by the best α over ε columns.",
        "",
    ]
    for key, costs in metrics["costs_by_delta"].items():
        lines += [f"## Tuning cost to δ = {float(key):g} pp (Figure 2)", ""]
        others = [n for n in names if n != reference]
        header = ["tuner"] + [f"{n}: median [95% CI] (q1–q3; censored)" for n in names]
        header += (
            [f"{o}/{reference} [95% CI]" for o in others]
            if key == delta_key(metrics["delta"])
            else []
        )
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for tuner in costs[names[0]]:
            row = [tuner]
            for n in names:
                c = costs[n][tuner]
                row.append(
                    f"{_f(c['median'], 1)} [{_f(c['ci'][0], 1)}–{_f(c['ci'][1], 1)}] "
                    f"({_f(c['q1'], 1)}–{_f(c['q3'], 1)}; {c['n_censored']})"
                )
            if key == delta_key(metrics["delta"]):
                for o in others:
                    r = metrics["ratios"][f"{o}/{reference}"][tuner]
                    row.append(f"{_f(r['ratio'])} [{_f(r['ci'][0])}–{_f(r['ci'][1])}]")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += [
        f"Cost = distinct grid points evaluated until the best error is within δ of the grid "
        f"minimum; {metrics['seeds']} seeded runs per tuner; CIs: percentile bootstrap over "
        "runs (1000 resamples). Censored runs count at their cost when stopped.",
        "",
        "## Figures",
        "",
    ]
    for key, title in (
        ("figure1", "Figure 1: validation error over (α, ε)"),
        ("figure2_costs", "Figure 2: trials to δ per tuner"),
        ("figure2_curves", "Figure 2: suboptimality vs trials, GLD and CGLD"),
    ):
        lines += [f"![{title}]({FIGURES[key]})", ""]
    return "\n".join(lines)


def _grid_metrics(table: GridTable, replay: TableReplay) -> dict[str, Any]:
    grid = objective(table)
    i, j = np.unravel_index(int(np.argmin(grid)), grid.shape)
    return {
        "task": table.task,
        "optimizer": table.optimizer,
        "shape": list(table.shape),
        "f_star": float(grid.min()),
        "best_alpha": table.alphas[i],
        "best_eps": table.epsilons[j],
        "interaction": interaction_fraction(grid),
        "drift_decades": best_alpha_drift(grid, table.alphas),
        "best_alpha_path": [table.alphas[k] for k in best_alphas(grid)],
        "replay_f_star": replay.f_star,
        "settings": table.settings,
    }


def _cost_metrics(table: TableReplay, delta: float, seed: int) -> dict[str, Any]:
    out = {}
    for tuner, runs in table.tuners.items():
        stats = runs.at(delta)
        out[tuner] = {
            "median": stats.median,
            "ci": list(bootstrap_ci(stats.costs, seed=seed)),
            "q1": stats.q1,
            "q3": stats.q3,
            "mean": stats.mean,
            "n_censored": stats.n_censored,
        }
    return out


def _ratios(other: TableReplay, reference: TableReplay, delta: float, seed: int) -> dict[str, Any]:
    out = {}
    for tuner in other.tuners:
        if tuner not in reference.tuners:
            continue
        ratio, ci = ratio_ci(
            other.tuners[tuner].at(delta).costs, reference.tuners[tuner].at(delta).costs, seed=seed
        )
        out[tuner] = {"ratio": ratio, "ci": list(ci)}
    return out


def _f(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
