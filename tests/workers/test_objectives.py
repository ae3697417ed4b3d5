"""`studies.objectives` (what the server labels charts with) matches the workers' tasks and
their learning curves."""

from __future__ import annotations

import pytest

from studies.objectives import CURVE_POINTS, OBJECTIVES, curve_steps, window_ends
from studies.specs import EXTERNAL_TASK
from studies.specs import TASKS as SPEC_TASKS
from workers import curves
from workers.tasks import TASKS


def test_every_task_has_its_objective_and_default_steps() -> None:
    assert set(OBJECTIVES) == set(TASKS) == set(SPEC_TASKS) - {EXTERNAL_TASK}  # ours: unknown
    for name, task in TASKS.items():
        goal = OBJECTIVES[name]
        assert goal.default_steps == task.default_steps, name
        if goal.unit == "%":
            assert task.objective_name == f"{goal.name} %", name


def test_curve_steps_are_the_workers_window_ends() -> None:
    assert curves.MAX_POINTS == CURVE_POINTS
    for steps in (1, 7, 100, 250, 1000, 1234):
        assert window_ends(steps, min(CURVE_POINTS, steps)) == curves.window_ends(steps)
        assert curve_steps(min(CURVE_POINTS, steps), steps) == curves.window_ends(steps)


@pytest.mark.parametrize("name", ["charlm-lstm", "eq11"])
def test_unit_of_other_tasks_appears_in_the_workers_objective_name(name: str) -> None:
    goal, task = OBJECTIVES[name], TASKS[name]
    words = task.objective_name.replace("validation ", "")
    assert words in goal.label or words in goal.unit, (goal, task.objective_name)
