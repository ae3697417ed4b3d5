"""The atlas report: every task's headline and coarse reports, one table across tasks and
optimizers, the ranking by tuning cost, the AvaGrad-vs-Adam conclusion per task, and the
mechanism diagnostics.

Adam and AvaGrad are reported from the paper's 21×21 grid (the headline); the other
optimizers from the coarse 11×11 grid, where Adam and AvaGrad also enter as the coarse
subgrid of their headline grid (every other α and ε), so that the cost ranking compares
every optimizer on the same grid. sgd has no ε: its grid is the α line, and the atlas
reports its best value, tunability and the line's cost only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studies.atlas_spec import AtlasSpec, spec_hash
from studies.grid_stats import GRID_RESAMPLES, Estimate, _tunability
from studies.objectives import objective_of
from studies.report import build_report, json_safe
from studies.report_text import interval, number
from studies.resample import table_resamples
from studies.space import SearchSpace
from studies.table import GridTable

FORMAT = "avatune-atlas/1"
#: Random-search budgets whose expected best the atlas table shows (Sivaprasad et al.).
TUNABILITY_KS = (8, 32)
#: The tuner whose Kaplan–Meier median cost ranks the optimizers (fixed in the protocol).
RANKING_TUNER = "cgld"
#: Per-task report sections reuse their metrics when the tables and settings are unchanged.
SECTION_MARK = "atlas-section.json"


@dataclass
class TaskTables:
    """A task's complete grids: the headline, the others (sgd's α line among them), and
    the extra-λ AvaGrad grids of the diagnostics, by role."""

    task: str
    headline: list[GridTable]
    others: list[GridTable]
    extra: dict[str, list[GridTable]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlphaLine:
    """An optimizer without ε (sgd): its α line's best value, tunability and cost."""

    optimizer: str
    f_star: Estimate
    best_alpha: float
    tunability: dict[int, Estimate]
    cost: int


def subgrid(table: GridTable, alphas: Sequence[float], epsilons: Sequence[float]) -> GridTable:
    """The cells of `table` at the given α and ε values (which it must contain), every seed."""
    rows = [table.alphas.index(a) for a in alphas]
    cols = [table.epsilons.index(e) for e in epsilons]

    def cut(grid: list[list[Any]] | None) -> list[list[Any]] | None:
        return None if grid is None else [[grid[i][j] for j in cols] for i in rows]

    def cut_seeds(grids: list[list[list[Any]]] | None) -> list[list[list[Any]]] | None:
        return None if grids is None else [cut(g) for g in grids]  # type: ignore[misc]

    data = table.model_dump()
    data.update(
        alphas=list(alphas),
        epsilons=list(epsilons),
        error=cut(table.error),
        test_error=cut(table.test_error),
        diverged=cut(table.diverged),
        error_seeds=cut_seeds(table.error_seeds),
        diverged_seeds=cut_seeds(table.diverged_seeds),
        test_error_seeds=cut_seeds(table.test_error_seeds),
    )
    return GridTable.model_validate(data)


def coarse_subgrid(table: GridTable, space: SearchSpace) -> GridTable:
    """A headline table cut to the others' grid `space` (a subgrid of it)."""
    alphas, epsilons = space.grid_axes()
    return subgrid(table, alphas, epsilons)


def alpha_line(table: GridTable, seed: int = 0) -> AlphaLine:
    """Best value and tunability of a one-column table, intervals from the seed bootstrap."""
    resamples = table_resamples(table, GRID_RESAMPLES, seed)
    mean = table.seed_errors().mean(axis=0)
    curve = _tunability(mean, resamples, TUNABILITY_KS)
    return AlphaLine(
        optimizer=table.optimizer,
        f_star=Estimate.of(float(mean.min()), resamples.min(axis=(1, 2))),
        best_alpha=table.alphas[int(np.argmin(mean[:, 0]))],
        tunability={
            k: Estimate(curve.expected[m], (curve.lo[m], curve.hi[m]))
            for m, k in enumerate(TUNABILITY_KS)
        },
        cost=len(table.alphas),
    )


def is_alpha_line(table: GridTable) -> bool:
    """Whether a table is an α line (one ε column: an optimizer that ignores ε)."""
    return len(table.epsilons) == 1


ReportFn = Callable[[list[GridTable], Path], dict[str, Any]]


def _digest(tables: Sequence[GridTable], settings: dict[str, Any]) -> str:
    import hashlib

    text = json.dumps([t.model_dump(mode="json") for t in tables], sort_keys=True)
    return hashlib.sha256((text + json.dumps(settings, sort_keys=True)).encode()).hexdigest()


def cached_report(
    tables: list[GridTable], out: Path, settings: dict[str, Any], run: ReportFn
) -> dict[str, Any]:
    """`run(tables, out)`, unless `out` holds the report of these very tables and settings."""
    digest = _digest(tables, settings)
    mark = out / SECTION_MARK
    if mark.is_file() and json.loads(mark.read_text()).get("digest") == digest:
        return json.loads((out / "metrics.json").read_text())
    metrics = run(tables, out)
    mark.write_text(json.dumps({"digest": digest}) + "\n")
    return metrics


def spec_report_fn(spec: AtlasSpec, processes: int | None = None) -> ReportFn:
    """The experiment report of `studies.report` with the atlas's replay settings."""
    replay = spec.replay

    def run(tables: list[GridTable], out: Path) -> dict[str, Any]:
        return build_report(
            tables,
            out_dir=out,
            tuners=list(replay.tuners),
            seeds=replay.seeds,
            deltas=replay.deltas_for(tables[0].task),
            bootstrap=replay.bootstrap,
            processes=processes,
        )

    return run


@dataclass
class TaskSection:
    """A task's reports: the headline's and the others' grid metrics, and the α lines."""

    task: str
    headline: dict[str, Any]
    coarse: dict[str, Any]
    lines: list[AlphaLine]
    extra: dict[str, dict[str, Any]]


def task_section(
    spec: AtlasSpec, tables: TaskTables, out: Path, run: ReportFn, progress: Callable[[str], None]
) -> TaskSection:
    """Compute (or reuse) a task's headline and coarse reports and its α lines."""
    settings = spec.replay.model_dump(mode="json")
    progress(f"{tables.task}: headline report ({len(tables.headline)} grids)")
    headline = cached_report(tables.headline, out / tables.task / "headline", settings, run)
    planes = [t for t in tables.others if not is_alpha_line(t)]
    coarse_tables = [coarse_subgrid(t, spec.others.space) for t in tables.headline] + planes
    progress(f"{tables.task}: coarse report ({len(coarse_tables)} grids)")
    coarse = cached_report(coarse_tables, out / tables.task / "coarse", settings, run)
    lines = [alpha_line(t) for t in tables.others if is_alpha_line(t)]
    extra = {}
    for role, role_tables in tables.extra.items():
        progress(f"{tables.task}: {role} report")
        extra[role] = cached_report(role_tables, out / tables.task / role, settings, run)
    return TaskSection(tables.task, headline, coarse, lines, extra)


@dataclass(frozen=True)
class AtlasRow:
    """One task × optimizer line of the atlas table."""

    task: str
    optimizer: str
    grid: str
    f_star: dict[str, Any]
    tunability: dict[str, dict[str, Any]]
    interaction: dict[str, Any] | None = None
    f_interaction: float | None = None
    p_interaction: float | None = None
    robust_drift: dict[str, Any] | None = None
    line_search_median: dict[str, Any] | None = None
    line_search_worst: dict[str, Any] | None = None
    cgld_gain: dict[str, Any] | None = None
    costs: dict[str, dict[str, Any]] = field(default_factory=dict)
    coarse_costs: dict[str, dict[str, Any]] = field(default_factory=dict)
    alpha_line_cost: int | None = None


def _tunability_at(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    curve = stats["tunability"]
    out = {}
    for k in TUNABILITY_KS:
        m = curve["ks"].index(k)
        out[str(k)] = {"value": curve["expected"][m], "ci": [curve["lo"][m], curve["hi"][m]]}
    return out


def _plane_row(
    task: str, name: str, grid: str, metrics: dict[str, Any], coarse: dict[str, Any]
) -> AtlasRow:
    stats = metrics["tables"][name]["stats"]
    anova = stats.get("anova") or {}
    return AtlasRow(
        task=task,
        optimizer=name,
        grid=grid,
        f_star=stats["f_star"],
        interaction=stats["interaction"],
        f_interaction=anova.get("f_interaction"),
        p_interaction=anova.get("p_interaction"),
        robust_drift=stats["robust_drift"],
        line_search_median=stats["line_search"]["median"],
        line_search_worst=stats["line_search"]["worst"],
        cgld_gain=metrics.get("cgld_gain", {}).get(name),
        costs=metrics["costs"].get(name, {}),
        coarse_costs=coarse["costs"].get(name, {}),
        tunability=_tunability_at(stats),
    )


def task_rows(spec: AtlasSpec, section: TaskSection) -> list[AtlasRow]:
    """The atlas rows of one task, in the spec's optimizer order."""
    rows = []
    lines = {line.optimizer: line for line in section.lines}
    for name in spec.optimizers:
        if name in lines:
            line = lines[name]
            rows.append(
                AtlasRow(
                    task=section.task,
                    optimizer=name,
                    grid="α line",
                    f_star={"value": line.f_star.value, "ci": list(line.f_star.ci)},
                    tunability={
                        str(k): {"value": e.value, "ci": list(e.ci)}
                        for k, e in line.tunability.items()
                    },
                    alpha_line_cost=line.cost,
                )
            )
        elif name in section.headline["tables"]:
            grid = spec.headline.label
            rows.append(_plane_row(section.task, name, grid, section.headline, section.coarse))
        elif name in section.coarse["tables"]:
            grid = spec.others.label
            rows.append(_plane_row(section.task, name, grid, section.coarse, section.coarse))
    return rows


def ranking(rows: Sequence[AtlasRow], tuner: str = RANKING_TUNER) -> list[dict[str, Any]]:
    """Optimizers of one task by the KM median cost of `tuner` on the coarse grid (cheapest
    first; a censored median counts as its bound and sorts after any uncensored one)."""
    ranked = []
    for row in rows:
        cost = row.coarse_costs.get(tuner)
        if cost is None:
            continue
        median = cost.get("median")
        censored = bool(cost.get("censored_median")) or median is None
        key = cost.get("median_bound") if censored else median
        ranked.append(
            {
                "optimizer": row.optimizer,
                "median": median,
                "ci": cost.get("ci"),
                "censored": censored,
                "bound": cost.get("median_bound"),
                "success_rate": cost.get("success_rate"),
                "_key": (censored, math.inf if key is None else key),
            }
        )
    ranked.sort(key=lambda r: r["_key"])
    for place, r in enumerate(ranked, 1):
        r["rank"] = place
        del r["_key"]
    return ranked


def conclusion(section: TaskSection) -> dict[str, Any]:
    """The headline's AvaGrad-vs-Adam conclusion, its reason and verdict sentence."""
    m = section.headline
    return {
        "conclusion": m.get("conclusion"),
        "reason": m.get("conclusion_reason"),
        "verdict": m.get("verdict"),
        "interaction_difference": m.get("interaction_difference"),
        "ratios": m.get("ratios"),
        "coarse_conclusion": section.coarse.get("conclusion"),
    }


def atlas_metrics(
    spec: AtlasSpec,
    sections: Sequence[TaskSection],
    *,
    header: dict[str, Any],
    diagnostics: dict[str, Any],
    timings: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json of the atlas (JSON-ready)."""
    tasks = {}
    for section in sections:
        rows = task_rows(spec, section)
        tasks[section.task] = {
            "objective": asdict(objective_of(section.task)),
            "rows": [asdict(r) for r in rows],
            "ranking": ranking(rows),
            "conclusion": conclusion(section),
            "extra": {
                role: {
                    name: {
                        "interaction": t["stats"]["interaction"],
                        "robust_drift": t["stats"]["robust_drift"],
                        "f_star": t["stats"]["f_star"],
                        "settings": t.get("settings"),
                    }
                    for name, t in m["tables"].items()
                }
                for role, m in section.extra.items()
            },
        }
    return json_safe(
        {
            "format": FORMAT,
            "spec_hash": spec_hash(spec),
            "spec": spec.model_dump(mode="json"),
            "header": header,
            "deltas": {t.name: spec.replay.deltas_for(t.name) for t in spec.tasks},
            "ranking_tuner": RANKING_TUNER,
            "grids": {"headline": spec.headline.label, "others": spec.others.label},
            "tasks": tasks,
            "diagnostics": diagnostics,
            "timings": timings,
        }
    )


def _est(e: dict[str, Any] | None, digits: int = 2) -> str:
    if not e:
        return "–"
    return f"{number(e.get('value'), digits)} [{interval(e.get('ci') or [None, None])}]"


def _cost(c: dict[str, Any] | None) -> str:
    if not c:
        return "–"
    if c.get("censored_median") or c.get("median") is None:
        return f"> {number(c.get('median_bound'), 0)}"
    return number(c["median"], 0)


def write_json(path: Path, data: Any) -> None:
    """JSON with a trailing newline."""
    path.write_text(json.dumps(data, indent=1) + "\n")


def table_lines(metrics: dict[str, Any]) -> list[str]:
    """The atlas table (markdown) over every task and optimizer."""
    lines = [
        "| task | optimizer | grid | f* [95% CI] | interaction [95% CI] | interaction F (p) "
        "| robust drift, decades [95% CI] | two-line-search regret: median / worst "
        "| CGLD gain [95% CI] | tunability k = 8 | k = 32 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, data in metrics["tasks"].items():
        for r in data["rows"]:
            f_test = (
                "–"
                if r["f_interaction"] is None
                else f"{number(r['f_interaction'], 1)} ({_p(r['p_interaction'])})"
            )
            regret = (
                f"{r['alpha_line_cost']} trainings (α line)"
                if r["alpha_line_cost"]
                else f"{_est(r['line_search_median'])} / {_est(r['line_search_worst'])}"
            )
            gain = r["cgld_gain"]
            gain_text = (
                "–" if not gain else f"{number(gain.get('ratio'))} [{interval(gain.get('ci'))}]"
            )
            lines.append(
                f"| {task} | {r['optimizer']} | {r['grid']} | {_est(r['f_star'])} "
                f"| {_est(r['interaction'], 3)} | {f_test} | {_est(r['robust_drift'], 1)} "
                f"| {regret} | {gain_text} | {_est(r['tunability']['8'])} "
                f"| {_est(r['tunability']['32'])} |"
            )
    return lines


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "p < 1e-12" if p < 1e-12 else f"p = {p:.2g}"


def cost_lines(metrics: dict[str, Any], tuners: Sequence[str]) -> list[str]:
    """Kaplan–Meier median trainings to the main δ, per tuner (each optimizer on its own
    grid: the headline's or the others')."""
    head = " | ".join(tuners)
    lines = [
        f"| task | optimizer | grid | {head} |",
        "| --- | --- | --- | " + " | ".join("---" for _ in tuners) + " |",
    ]
    for task, data in metrics["tasks"].items():
        for r in data["rows"]:
            if r["alpha_line_cost"]:
                continue
            cells = " | ".join(_cost(r["costs"].get(t)) for t in tuners)
            lines.append(f"| {task} | {r['optimizer']} | {r['grid']} | {cells} |")
    return lines


def ranking_lines(metrics: dict[str, Any]) -> list[str]:
    """Per task: the optimizers ranked by the ranking tuner's median cost on the coarse grid."""
    tuner = metrics["ranking_tuner"].upper()
    lines = []
    for task, data in metrics["tasks"].items():
        parts = []
        for r in data["ranking"]:
            cost = f"> {number(r['bound'], 0)}" if r["censored"] else number(r["median"], 0)
            parts.append(f"{r['rank']}. {r['optimizer']} {cost} [{interval(r['ci'])}]")
        grid = metrics["grids"]["others"]
        lines.append(f"- **{task}** ({tuner}, {grid}): " + "; ".join(parts))
    return lines


def conclusion_lines(metrics: dict[str, Any]) -> list[str]:
    """Per task: the AvaGrad-vs-Adam conclusion on the headline grid and its numbers."""
    lines = []
    for task, data in metrics["tasks"].items():
        c = data["conclusion"]
        lines.append(
            f"- **{task}: {c['conclusion']}** ({c['reason']}; on the coarse grid: "
            f"{c['coarse_conclusion']}). {c['verdict']}"
        )
    return lines
