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
from studies.anova import MARGIN
from studies.bootstrap import BootstrapReplay, BootstrapSettings, bootstrap_replays
from studies.conclusion import Evidence, conclude, rule
from studies.cost_stats import cgld_gain, cost_ratio, cost_summary, gain_interaction, summary_dict
from studies.deltas import DeltaKind, delta_target, delta_unit
from studies.grid_stats import GRID_RESAMPLES, GridStats, grid_stats
from studies.intervals import percentile_ci
from studies.objectives import UNKNOWN, objective_of
from studies.replay import ReplayResult, TableReplay, delta_key, replay_tables, table_names
from studies.report_text import Units, ratio_text, units
from studies.report_text import interval as _ci
from studies.report_text import median_text as _median
from studies.report_text import number as _f
from studies.resample import table_resamples
from studies.separability import (
    best_alpha_drift,
    best_alphas,
    interaction_fraction,
    objective,
)
from studies.specs import DEFAULT_EPS
from studies.table import GridTable, optimizer_label
from studies.tuners import TUNERS

FORMAT = "avatune-report/2"
FIGURES = {
    "figure1": "figure1_heatmaps.png",
    "figure2_costs": "figure2_costs.png",
    "figure2_curves": "figure2_curves.png",
    "tunability": "tunability.png",
}


def compute_metrics(
    tables: Sequence[GridTable],
    replay: ReplayResult,
    bootstrap: BootstrapReplay | None = None,
    *,
    reference: str | None = None,
    seed: int = 0,
    grid_resamples: int = GRID_RESAMPLES,
) -> dict[str, Any]:
    """Grid statistics, KM costs, ratios, CGLD gains, the conclusion and the verdict sentence.

    Cost intervals come from `bootstrap` (the hierarchical bootstrap of the replays); without
    it they are null and the conclusion is "inconclusive". δ reads as the replay's δ kind.
    """
    names = [t.name for t in replay.tables]
    if len(names) != len(tables):
        raise ValueError("the replay must hold one entry per table, in the same order")
    kind = replay.delta_kind
    if bootstrap is not None and bootstrap.delta_kind != kind:
        raise ValueError(
            f"the bootstrap reads δ as {bootstrap.delta_kind}, the replay as {kind}: "
            "rerun the bootstrap"
        )
    goal = objective_of(tables[0].task) if tables else UNKNOWN
    reference = reference or ("avagrad" if "avagrad" in names else names[-1])
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not among the tables {names}")
    resamples = {
        name: table_resamples(t, grid_resamples, seed + 104729 * k)
        for k, (name, t) in enumerate(zip(names, tables, strict=True))
    }
    stats = {
        name: grid_stats(
            t,
            resamples[name],
            delta=replay.delta,
            delta_kind=kind,
            default_eps=DEFAULT_EPS.get(t.optimizer),
        )
        for name, t in zip(names, tables, strict=True)
    }
    grids = {
        name: {
            **_grid_metrics(t, replay.table(name), replay.deltas, kind),
            "stats": stats[name].to_dict(),
        }
        for name, t in zip(names, tables, strict=True)
    }
    by_delta = {
        delta_key(d): {
            name: {
                tuner: summary_dict(cost_summary(replay, bootstrap, name, tuner, d))
                for tuner in replay.table(name).tuners
            }
            for name in names
        }
        for d in replay.deltas
    }
    others = [n for n in names if n != reference]
    ratios = {
        f"{other}/{reference}": {
            tuner: cost_ratio(replay, bootstrap, other, reference, tuner, replay.delta).to_dict()
            for tuner in replay.table(other).tuners
            if tuner in replay.table(reference).tuners
        }
        for other in others
    }
    has_gld = all({"gld", "cgld"} <= set(replay.table(n).tuners) for n in names)
    gains = (
        {n: cgld_gain(replay, bootstrap, n, replay.delta)[0].to_dict() for n in names}
        if has_gld
        else {}
    )
    gain_interactions = (
        {
            f"{reference}/{o}": gain_interaction(
                replay, bootstrap, reference, o, replay.delta
            ).to_dict()
            for o in others
        }
        if has_gld
        else {}
    )
    differences = {
        f"{reference}-{o}": _interaction_difference(
            stats[reference], stats[o], resamples, reference, o
        )
        for o in others
    }
    metrics: dict[str, Any] = {
        "format": FORMAT,
        "delta": replay.delta,
        "deltas": replay.deltas,
        "delta_kind": kind,
        "delta_unit": delta_unit(kind, goal.gap_unit),
        "objective": {"name": goal.name, "unit": goal.unit, "gap_unit": goal.gap_unit},
        "seeds": replay.seeds,
        "reference": reference,
        "tables": grids,
        "costs": by_delta[delta_key(replay.delta)],
        "costs_by_delta": by_delta,
        "ratios": ratios,
        "cgld_gain": gains,
        "cgld_gain_interaction": gain_interactions,
        "interaction_difference": differences,
        "bootstrap": {
            "grid_resamples": grid_resamples,
            "replay": None
            if bootstrap is None
            else {**bootstrap.settings.model_dump(), "seconds": bootstrap.seconds},
        },
    }
    metrics.update(_conclusion(metrics, tables, names))
    metrics["verdict"] = verdict(metrics)
    return json_safe(metrics)


def _interaction_difference(
    ref: GridStats, other: GridStats, resamples: dict[str, np.ndarray], ref_name: str, name: str
) -> dict[str, Any]:
    """interaction(reference) − interaction(other), its CI from independent resamples."""
    a = np.array([interaction_fraction(t) for t in resamples[ref_name]])
    b = np.array([interaction_fraction(t) for t in resamples[name]])
    value = ref.interaction.value - other.interaction.value
    return {"value": value, "ci": list(percentile_ci(a - b))}


def _conclusion(
    metrics: dict[str, Any], tables: Sequence[GridTable], names: list[str]
) -> dict[str, Any]:
    reference = metrics["reference"]
    others = [n for n in names if n != reference]
    if not others:
        return {"conclusion": "inconclusive", "conclusion_reason": "one optimizer only"}
    other = "adam" if "adam" in others else others[0]
    difference = metrics["interaction_difference"][f"{reference}-{other}"]
    cgld = metrics["ratios"][f"{other}/{reference}"].get("cgld")
    seeds = min(t.seeds for t in tables)
    evidence = Evidence(
        interaction_difference_ci=_finite_pair(difference["ci"]),
        cgld_ratio_ci=(None, None) if cgld is None else _finite_pair(cgld["ci"], keep_inf=True),
        seeds=seeds,
    )
    conclusion, reason = conclude(evidence)
    return {
        "conclusion": conclusion,
        "conclusion_reason": reason,
        "conclusion_rule": rule(reference, other),
        "decided_by": {
            "other": other,
            "seeds": seeds,
            "interaction_difference": difference,
            "cgld_ratio": cgld,
        },
    }


def _finite_pair(ci: Sequence[float], keep_inf: bool = False) -> tuple[float | None, float | None]:
    def one(v: float) -> float | None:
        if v is None or math.isnan(v) or (math.isinf(v) and not keep_inf):
            return None
        return float(v)

    return one(ci[0]), one(ci[1])


def verdict(metrics: dict[str, Any]) -> str:
    """One sentence: the conclusion and the numbers it rests on."""
    reference = metrics["reference"]
    others = [n for n in metrics["tables"] if n != reference]
    if not others:
        return f"Only {reference} was measured: nothing to compare."
    other = metrics.get("decided_by", {}).get("other") or others[0]
    ref, oth = metrics["tables"][reference], metrics["tables"][other]
    tuner = (
        "cgld" if "cgld" in metrics["costs"][reference] else next(iter(metrics["costs"][reference]))
    )
    ratio = metrics["ratios"][f"{other}/{reference}"][tuner]
    difference = metrics["interaction_difference"][f"{reference}-{other}"]
    return (
        f"{reference} vs {other}: interaction {_f(ref['interaction'])} vs "
        f"{_f(oth['interaction'])} (difference {_f(difference['value'])}, 95% CI "
        f"{_ci(difference['ci'])}), robust best-α drift "
        f"{_f(ref['stats']['robust_drift']['value'], 1)} vs "
        f"{_f(oth['stats']['robust_drift']['value'], 1)} decades; {tuner.upper()} needs median "
        f"{_median(metrics['costs'][reference][tuner])} vs "
        f"{_median(metrics['costs'][other][tuner])} trials to "
        f"{units(metrics).delta(metrics['delta'])} "
        f"(ratio {other}/{reference} {_ratio(ratio)}) — the claim that {reference}'s α and ε "
        f"are separable and cheaper to tune is {metrics['conclusion']} here "
        f"({metrics['conclusion_reason']})."
    )


def build_report(
    tables: Sequence[GridTable],
    replay: ReplayResult | None = None,
    out_dir: str | Path | None = None,
    *,
    bootstrap: BootstrapReplay | BootstrapSettings | None = None,
    reference: str | None = None,
    tuners: Sequence[str] = TUNERS,
    seeds: int = 100,
    deltas: Sequence[float] | None = None,
    processes: int | None = None,
    names: Sequence[str] | None = None,
    delta_kind: DeltaKind | None = None,
) -> dict[str, Any]:
    """Write report.md, metrics.json and PNG figures to `out_dir`; return the metrics.

    Without a replay, one is run first (`tuners`, `seeds`, `deltas` — the first is the main
    δ; the task's defaults when None — read as `delta_kind`, the task's when None, in
    `processes`) and saved as replay.json next to the report. Without a finished bootstrap,
    the hierarchical bootstrap runs with the given settings (defaults when None), reading δ
    as the replay does, and is saved as bootstrap.json.
    """
    if out_dir is None:
        raise TypeError("build_report needs out_dir")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if replay is None:
        if deltas is None:
            deltas = (objective_of(tables[0].task) if tables else UNKNOWN).deltas
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
            delta_kind=delta_kind,
        )
        replay.save(out / "replay.json")
    if not isinstance(bootstrap, BootstrapReplay):
        bootstrap = bootstrap_replays(
            tables,
            [t.name for t in replay.tables],
            list(replay.table(replay.tables[0].name).tuners),
            replay.deltas,
            bootstrap or BootstrapSettings(),
            processes,
            delta_kind=replay.delta_kind,
        )
        (out / "bootstrap.json").write_text(bootstrap.model_dump_json() + "\n")
    metrics = compute_metrics(tables, replay, bootstrap, reference=reference)
    names = [t.name for t in replay.tables]
    figures.render_png(figures.heatmaps(tables, names), out / FIGURES["figure1"])
    figures.render_png(figures.cost_bars(replay), out / FIGURES["figure2_costs"])
    figures.render_png(figures.suboptimality_curves(replay), out / FIGURES["figure2_curves"])
    figures.render_png(figures.tunability_curves(metrics), out / FIGURES["tunability"])
    metrics["figures"] = dict(FIGURES)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out / "report.md").write_text(markdown(metrics))
    return metrics


def markdown(metrics: dict[str, Any]) -> str:
    """report.md: conclusion and rule, noise, grid metrics, the direct tests, cost tables."""
    names = list(metrics["tables"])
    reference = metrics["reference"]
    others = [n for n in names if n != reference]
    u = units(metrics)
    lines = [
        "# Separability report",
        "",
        f"**Conclusion: {metrics['conclusion']}** ({metrics['conclusion_reason']}).",
        "",
        f"**Verdict.** {metrics['verdict']}",
        "",
    ]
    if "conclusion_rule" in metrics:
        lines += [f"Rule: {metrics['conclusion_rule']}", ""]
    lines += _noise_section(metrics)
    lines += [
        "## Grids (Figure 1)",
        "",
        f"| optimizer | task | grid | seeds | best {u.label} [95% CI] | best α | best ε "
        "| interaction [95% CI] | trainable-region interaction [95% CI] | interaction F (p) "
        "| best-α drift | robust drift [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in metrics["tables"].items():
        st = g["stats"]
        anova = st["anova"]
        f_test = (
            "–" if anova is None else f"{_f(anova['f_interaction'])} ({_p(anova['p_interaction'])})"
        )
        lines.append(
            f"| {optimizer_label(name, g.get('settings'))} | {g['task']} "
            f"| {g['shape'][0]}×{g['shape'][1]} | {g['seeds']} | {_est(st['f_star'])} "
            f"| {g['best_alpha']:g} | {g['best_eps']:g} | {_est(st['interaction'], 3)} "
            f"| {_est(st['trainable_interaction'], 3)} ({st['trainable_cells']} cells) "
            f"| {f_test} | {_f(g['drift_decades'], 1)} | {_est(st['robust_drift'], 1)} |"
        )
    lines += [
        "",
        "Interaction: share of the grid's variance not explained by α and ε main effects "
        f"(0 = separable); the trainable-region version uses only cells more than "
        f"{_with_unit(MARGIN, u.gap_unit)} below chance. F: two-way ANOVA of the interaction "
        "against seed noise. Drift: decades spanned by the best α over all ε columns; robust "
        f"drift: over the columns whose best is within {u.delta(metrics['delta'])} of f*.",
        "",
    ]
    for key, d in metrics["interaction_difference"].items():
        lines.append(f"Interaction difference {key}: {_f(d['value'], 3)} [{_ci(d['ci'], 3)}].")
    lines += ["", *_line_search_section(metrics), *_gain_section(metrics)]
    lines += _tunability_section(metrics)
    for key, costs in metrics["costs_by_delta"].items():
        primary = key == delta_key(metrics["delta"])
        floors = ", ".join(
            f"{n} {_f(metrics['tables'][n]['stats']['noise']['f_star_se'])}" for n in names
        )
        lines += [
            f"## Tuning cost to {u.delta(float(key))} (Figure 2)",
            "",
            f"Noise floor at the optimum (SE of f*, {u.gap_unit or 'objective units'}): {floors}.",
            "",
            *_targets_line(metrics, key),
        ]
        header = ["tuner"] + [f"{n}: KM median [95% CI]; success rate" for n in names]
        header += [f"{o}/{reference} [95% CI]" for o in others] if primary else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for tuner in costs[names[0]]:
            row = [tuner]
            for n in names:
                c = costs[n][tuner]
                row.append(
                    f"{_median(c)} [{_ci(c['ci'], 1)}]; {_f(100 * (c['success_rate'] or 0), 0)}% "
                    f"[{_pct(c['success_ci'])}]"
                )
            if primary:
                row += [_ratio(metrics["ratios"][f"{o}/{reference}"][tuner]) for o in others]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    boot = metrics["bootstrap"]["replay"]
    lines += [
        f"Cost = distinct grid points evaluated until the best {u.objective} is within δ of the "
        f"grid minimum{_relative_note(u)}; {metrics['seeds']} seeded runs per tuner on the "
        "seed-mean table give the point estimates. Medians are Kaplan–Meier medians over runs; "
        "a run that stopped without reaching δ is censored, and a median the censored runs "
        'leave open is shown as a bound (">" the median of stopping costs). Success rate: runs '
        "that reached δ within the budget (20 × grid size asks, or a grid size of asks "
        "without a new point).",
        "",
        "Intervals: hierarchical bootstrap. Each replicate redraws every cell's training "
        "seeds (plain resampling of each cell's seeds), rebuilds the mean table, re-derives f* and "
        + (
            "replays the tuners on it: "
            f"{boot['tables']} tables × {boot['replays']} replays per tuner "
            f"({min(boot['slow_tables'], boot['tables'])} × {boot['slow_replays']} "
            "for TPE and CMA-ES), "
            f"{_f(boot['seconds'], 1)} s."
            if boot
            else "(no replay bootstrap was run: cost intervals are missing)."
        )
        + f" Grid statistics use {metrics['bootstrap']['grid_resamples']} resampled tables.",
        "",
        "## Figures",
        "",
    ]
    for key, title in (
        ("figure1", f"Figure 1: {u.objective} over (α, ε)"),
        ("figure2_costs", "Figure 2: trials to δ per tuner"),
        ("figure2_curves", "Figure 2: suboptimality vs trials, GLD and CGLD"),
        ("tunability", f"Tunability: expected best {u.objective} after k random trials"),
    ):
        lines += [f"![{title}]({FIGURES[key]})", ""]
    return "\n".join(lines)


def _noise_section(metrics: dict[str, Any]) -> list[str]:
    u = units(metrics)
    lines = [
        "## Noise",
        "",
        f"| optimizer | seeds per cell | median seed SE{_unit_suffix(u.gap_unit)} "
        "| SE at the best cell | SE of f* (bootstrap) | δ / SE(f*) |",
        "|---|---|---|---|---|---|",
    ]
    for name, g in metrics["tables"].items():
        n = g["stats"]["noise"]
        lines.append(
            f"| {name} | {n['seeds']} | {_f(n['seed_se_median'])} | {_f(n['seed_se_best'])} "
            f"| {_f(n['f_star_se'])} | {_f(n['delta_over_se'], 1)} |"
        )
    lines += [
        "",
        f"{u.delta(metrics['delta'])} is the main target{_relative_note(u)}; a δ near or "
        "below SE(f*) asks the tuners to beat noise. With one seed per cell the noise is "
        "unknown (–).",
        "",
    ]
    return lines


def _line_search_section(metrics: dict[str, Any]) -> list[str]:
    u = units(metrics)
    lines = [
        "## Two line searches (the paper's operational test)",
        "",
        "From every start ε₀ of the grid: line-search α on column ε₀, then ε on the best α's "
        f"row. Regret = found − f*{_unit_suffix(u.gap_unit)}. Separable means a regret near 0 "
        "from every ε₀.",
        "",
        "| optimizer | cost (evaluations) | median regret [95% CI] | worst regret [95% CI] "
        f"| starts within {u.delta(metrics['delta'])} | from the default ε₀ [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for name, g in metrics["tables"].items():
        ls = g["stats"]["line_search"]
        default = (
            "–"
            if ls["default_regret"] is None
            else f"{_est(ls['default_regret'])} (ε₀ = {ls['default_start']:g})"
        )
        lines.append(
            f"| {name} | {ls['cost']} | {_est(ls['median'])} | {_est(ls['worst'])} "
            f"| {_f(100 * ls['within_delta'], 0)}% | {default} |"
        )
    return [*lines, ""]


def _gain_section(metrics: dict[str, Any]) -> list[str]:
    if not metrics["cgld_gain"]:
        return []
    lines = [
        "## CGLD gain (coordinate steps vs plain GLD)",
        "",
        "| optimizer | cost(GLD) / cost(CGLD) [95% CI] |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_ratio(g)} |" for name, g in metrics["cgld_gain"].items()]
    lines.append("")
    for key, g in metrics["cgld_gain_interaction"].items():
        lines.append(f"Optimizer × tuner interaction, gain {key}: {_ratio(g)}.")
    return [*lines, ""]


def _tunability_section(metrics: dict[str, Any]) -> list[str]:
    names = list(metrics["tables"])
    ks = metrics["tables"][names[0]]["stats"]["tunability"]["ks"]
    lines = [
        "## Tunability (Sivaprasad et al., 2020)",
        "",
        f"Expected best {units(metrics).label} after k random trials on the grid [95% CI].",
        "",
        "| k | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for i, k in enumerate(ks):
        row = [str(k)]
        for name in names:
            t = metrics["tables"][name]["stats"]["tunability"]
            row.append(f"{_f(t['expected'][i])} [{_f(t['lo'][i])}–{_f(t['hi'][i])}]")
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _grid_metrics(
    table: GridTable, replay: TableReplay, deltas: Sequence[float], kind: DeltaKind
) -> dict[str, Any]:
    grid = objective(table)
    i, j = np.unravel_index(int(np.argmin(grid)), grid.shape)
    f_star = float(grid.min())
    return {
        "task": table.task,
        "optimizer": table.optimizer,
        "shape": list(table.shape),
        "f_star": f_star,
        "targets": {delta_key(d): float(delta_target(d, f_star, kind)) for d in deltas},
        "best_alpha": table.alphas[i],
        "best_eps": table.epsilons[j],
        "interaction": interaction_fraction(grid),
        "drift_decades": best_alpha_drift(grid, table.alphas),
        "best_alpha_path": [table.alphas[k] for k in best_alphas(grid)],
        "replay_f_star": replay.f_star,
        "settings": table.settings,
        "seeds": table.seeds,
    }


def _targets_line(metrics: dict[str, Any], key: str) -> list[str]:
    """For a relative δ, the value each grid's runs had to reach (f* + δ/100·|f*|)."""
    u = units(metrics)
    if u.delta_kind != "relative":
        return []
    targets = ", ".join(
        f"{n} {_f(g.get('targets', {}).get(key), 4)}" for n, g in metrics["tables"].items()
    )
    unit = f", {u.unit}" if u.unit else ""
    return [f"Targets (f* + δ/100·f*{unit}): {targets}.", ""]


def _relative_note(u: Units) -> str:
    return " (δ/100·f* above it)" if u.delta_kind == "relative" else ""


def _unit_suffix(unit: str) -> str:
    """The unit in brackets after a quantity, e.g. " (pp)"; nothing when unitless."""
    return f" ({unit})" if unit else ""


def _with_unit(value: float, unit: str) -> str:
    return f"{value:g} {unit}".strip()


def _est(estimate: dict[str, Any], digits: int = 2) -> str:
    return f"{_f(estimate['value'], digits)} [{_ci(estimate['ci'], digits)}]"


def _pct(ci: Sequence[float | None]) -> str:
    lo, hi = ci
    if lo is None or hi is None:
        return "–"
    return f"{100 * lo:.0f}–{100 * hi:.0f}%"


def _p(p: float | None) -> str:
    if p is None:
        return "p –"
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.3g}"


def _ratio(ratio: dict[str, Any]) -> str:
    """A ratio with its CI, or a bound; says why when both medians are censored."""
    if ratio["ratio"] is None and ratio.get("bound") is None:
        return "– (both medians censored)"
    return ratio_text(ratio)


def json_safe(value: Any) -> Any:
    """JSON-ready data: NaN and ∞ as null, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
