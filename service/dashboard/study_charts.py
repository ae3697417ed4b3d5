"""The charts of a study (and of an experiment's grids so far) labelled with its task's
objective: which heatmap cells diverged, the heatmaps, and the learning curves by step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from service.dashboard import charts
from service.dashboard.aggregate import DECIMALS
from service.dashboard.landscape import Landscape
from service.models import Trial, TrialState
from studies.objectives import Objective, objective_of
from studies.schemas import StudyOut
from studies.specs import StudySpec

Grid = list[list[float | None]]


def diverged_cells(
    conn: Connection, study_id: int, landscape: Landscape, z: Grid
) -> set[tuple[int, int]]:
    """Cells whose best value `z` is a diverged trial's (copies of known points left out)."""
    rows = conn.execute(
        select(Trial.alpha, Trial.eps, Trial.i_alpha, Trial.j_eps, Trial.value).where(
            Trial.study_id == study_id,
            Trial.state == TrialState.diverged,
            Trial.source_trial_id.is_(None),
            Trial.value.is_not(None),
        )
    ).all()
    cells = set()
    for alpha, eps, i, j, value in rows:
        row, column = landscape.cell(alpha, eps, i, j)
        best = z[row][column]
        if best is not None and round(value, DECIMALS) <= best:
            cells.add((row, column))
    return cells


def trained_steps(spec: StudySpec, goal: Objective) -> int | None:
    """Training steps of each trial: the fidelity's, else the task's default."""
    return spec.fidelity.steps or goal.default_steps


def study_heatmap(
    conn: Connection, study: StudyOut, landscape: Landscape, z: Grid
) -> dict[str, Any]:
    """The study page's heatmap of `z` (the best value per cell)."""
    goal = objective_of(study.task)
    return charts.landscape_figure(
        [(study.optimizer, landscape, z)],
        f"{study.optimizer} on {study.task}: {goal.name} over (α, ε)",
        goal,
        [diverged_cells(conn, study.id, landscape, z)],
    )


def best_so_far(study: StudyOut, steps: Sequence[tuple[int, float]], last: int | None) -> Any:
    """The study page's best-so-far line, labelled with the objective."""
    return charts.best_figure(steps, last, objective_of(study.task))


def grids_heatmap(
    conn: Connection, task: str, studies: Sequence[StudyOut], panels: Sequence[Any]
) -> dict[str, Any]:
    """An experiment's grids so far side by side; `panels` as `charts.landscape_figure`'s."""
    goal = objective_of(task)
    cells = [
        diverged_cells(conn, study.id, landscape, z)
        for study, (_, landscape, z) in zip(studies, panels, strict=True)
    ]
    title = f"{goal.name[:1].upper()}{goal.name[1:]} over the (α, ε) grids so far"
    return charts.landscape_figure(panels, title, goal, cells)


def curves_figure(study: StudyOut, lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The learning curves of `lines` (from `curves.load`) against the training step."""
    goal = objective_of(study.task)
    return charts.curves_figure(
        [(line["label"], line["curve"]) for line in lines], goal, trained_steps(study.spec, goal)
    )
