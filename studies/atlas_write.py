"""Write the atlas report: per-task sections, then report.md, metrics.json and the PNGs.

Each task gets `<task>/headline/` and `<task>/coarse/` (and `<task>/<role>/` for the extra
λ runs): full separability reports with their replays, bootstraps and figures. The top
level holds the atlas table, the ranking, the conclusions, Figure 1 per task and the
diagnostics, with the command, commit and machine that produced them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studies import atlas_diagnostics
from studies.atlas_report import (
    RANKING_TUNER,
    TaskTables,
    atlas_metrics,
    conclusion_lines,
    cost_lines,
    ranking_lines,
    spec_report_fn,
    table_lines,
    task_section,
    write_json,
)
from studies.atlas_spec import DECOUPLED, MAIN_ROLES, AtlasSpec
from studies.objectives import objective_of
from studies.table import GridTable


@dataclass
class AtlasInputs:
    """What the runner fetched: grids by (task, role), diagnostics and per-grid times."""

    tables: dict[tuple[str, str], list[GridTable]] = field(default_factory=dict)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)

    def add_tables(self, task: str, role: str, tables: list[GridTable]) -> None:
        """An experiment's complete grids."""
        self.tables[task, role] = tables

    def task_tables(self, task: str) -> TaskTables:
        """A task's grids by role."""
        extra = {
            role: t
            for (name, role), t in self.tables.items()
            if name == task and role not in MAIN_ROLES
        }
        return TaskTables(task, self.tables[task, "headline"], self.tables[task, "others"], extra)

    def by_optimizer(self) -> dict[tuple[str, str, str], GridTable]:
        """Every grid by (task, role, optimizer)."""
        return {
            (task, role, t.optimizer): t
            for (task, role), tables in self.tables.items()
            for t in tables
        }


def write_atlas(
    spec: AtlasSpec,
    inputs: AtlasInputs,
    out: Path,
    *,
    header: dict[str, Any],
    processes: int | None = None,
    say: Callable[[str], None] = print,
) -> Path:
    """Compute every section (reusing unchanged ones) and write the atlas; report.md's path."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = spec_report_fn(spec, processes)
    sections = [task_section(spec, inputs.task_tables(t.name), out, run, say) for t in spec.tasks]
    for task in spec.tasks:
        figure = out / task.name / "headline" / "figure1_heatmaps.png"
        if figure.is_file():
            shutil.copyfile(figure, out / f"figure1_{task.name}.png")
    grids = atlas_diagnostics.diagnosed_grids(inputs.diagnostics, inputs.by_optimizer())
    figure = atlas_diagnostics.figure(grids, out / "diagnostics.png")
    spent = header.get("analysis_seconds", 0.0) + time.monotonic() - started
    header = {**header, "analysis_seconds": round(spent, 1)}
    metrics = atlas_metrics(
        spec,
        sections,
        header=header,
        diagnostics={
            "figure": None if figure is None else figure.name,
            "grids": atlas_diagnostics.as_json(grids),
        },
        timings={"grids": grid_seconds(inputs.timings, header["started"])},
    )
    write_json(out / "metrics.json", metrics)
    (out / "report.md").write_text(markdown(spec, metrics, grids))
    return out / "report.md"


def _header_lines(metrics: dict[str, Any]) -> list[str]:
    h = metrics["header"]
    m = h["machine"]
    return [
        f"- command: `{h['command']}`",
        f"- trained at commit `{h['commit']}`; this report written at `{h['report_commit']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['system']}, "
        f"Python {m['python']}; server: {h['server']}",
        f"- date: {h['date']}; {h['sessions']} session(s); training {h['training_seconds']:.0f} s "
        f"wall, analysis {h['analysis_seconds']:.0f} s (over all sessions)",
        f"- spec: `studies/specs/atlas.yaml`, hash `{metrics['spec_hash'][:16]}…`",
    ]


def _protocol_lines(spec: AtlasSpec) -> list[str]:
    lines = [
        f"S = {spec.seeds} training seeds per cell; weight decay λ = {spec.weight_decay:g} for "
        f"every optimizer (decoupled for {', '.join(DECOUPLED)}, L2 for the others). "
        f"{', '.join(spec.headline.optimizers)} on the {spec.headline.label} grid, "
        f"{', '.join(spec.others.optimizers)} on the {spec.others.label} grid "
        "(sgd has no ε: its α line).",
        "",
        "| task | objective | δ | steps | batch | model |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task in spec.tasks:
        goal = objective_of(task.name)
        config = ", ".join(f"{k} = {v}" for k, v in task.config.items()) or "default"
        lines.append(
            f"| {task.name} | {goal.label} | {_deltas(spec, task.name)} | {task.steps} "
            f"| {task.batch_size} | {config} |"
        )
    return lines


def _deltas(spec: AtlasSpec, task: str) -> str:
    unit = objective_of(task).delta_unit
    return ", ".join(f"{d:g} {unit}" for d in spec.replay.deltas_for(task))


def grid_seconds(grids: list[dict[str, Any]], started: str) -> list[dict[str, Any]]:
    """Each grid's wall seconds: from the previous grid's last result (in the order the grids
    finished; the run's start for the first) to its own last result. One worker trains the
    queue in order, so these add up to the training time; interleaved grids share it."""
    done = sorted((g for g in grids if g.get("last_finished")), key=lambda g: g["last_finished"])
    previous = datetime.fromisoformat(started)
    out = []
    for g in done:
        end = datetime.fromisoformat(g["last_finished"])
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        out.append({**g, "seconds": round(max(0.0, (end - previous).total_seconds()), 1)})
        previous = max(previous, end)
    return out


def _timing_lines(metrics: dict[str, Any]) -> list[str]:
    grids = metrics["timings"]["grids"]
    lines = [
        "| task | grid | points (each × S seeds) | wall seconds |",
        "| --- | --- | --- | --- |",
    ]
    for t in grids:
        lines.append(f"| {t['task']} | {t['optimizer']} | {t['points']} | {t['seconds']:.0f} |")
    per_task: dict[str, float] = {}
    for t in grids:
        per_task[t["task"]] = per_task.get(t["task"], 0.0) + t["seconds"]
    lines += ["", "Per task: " + ", ".join(f"{k} {v:.0f} s" for k, v in per_task.items()) + "."]
    return lines


def markdown(
    spec: AtlasSpec, metrics: dict[str, Any], grids: list[atlas_diagnostics.DiagnosedGrid]
) -> str:
    """report.md of the atlas."""
    tuners = list(spec.replay.tuners)
    lines = [
        "# The separability atlas",
        "",
        *_header_lines(metrics),
        "",
        "## Protocol",
        "",
        *_protocol_lines(spec),
        "",
        "## AvaGrad vs Adam, per task",
        "",
        *conclusion_lines(metrics),
        "",
        "## Every optimizer",
        "",
        "Intervals are 95 % hierarchical-bootstrap intervals over training seeds. Adam and "
        f"AvaGrad on the {spec.headline.label} grid, the others on {spec.others.label}. "
        "Interaction: the α × ε share of the "
        "grid's variance (0 = separable); robust drift: decades spanned by the best α over the "
        "ε columns whose best is within δ of f*; two-line-search regret: from every ε₀, α "
        "line then ε line, found − f*; CGLD gain: cost(GLD) / cost(CGLD); tunability: expected "
        "best after k random trials.",
        "",
        *table_lines(metrics),
        "",
        "Kaplan–Meier median trainings to each task's first δ (the protocol table):",
        "",
        *cost_lines(metrics, tuners),
        "",
        f"## Ranked by tuning cost ({RANKING_TUNER.upper()}, median trainings, "
        f"{spec.others.label} grid)",
        "",
        *ranking_lines(metrics),
        "",
        "## Figure 1 per task",
        "",
    ]
    for task in spec.tasks:
        lines += [f"![{task.name}](figure1_{task.name}.png)", ""]
    lines += ["## Mechanism diagnostics (AvaGrad)", ""]
    if metrics["diagnostics"]["figure"]:
        lines += [f"![diagnostics]({metrics['diagnostics']['figure']})", ""]
    lines += [*atlas_diagnostics.summary_lines(grids), "", "## Grid times", ""]
    lines += [*_timing_lines(metrics), ""]
    lines += [
        "Per-task reports (replays, bootstraps, every figure): "
        + ", ".join(f"[{t.name}]({t.name}/headline/report.md)" for t in spec.tasks),
        "",
    ]
    return "\n".join(lines)
