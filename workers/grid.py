"""A whole (α, ε) grid of one task and optimizer, trained locally into a `GridTable`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from studies.grids import GridName, grid_values
from studies.table import GridTable
from workers.tasks import get_task
from workers.trainer import TrialConfig, TrialResult, train

#: AdaBelief adds ε to its second-moment state, so its ε lives near ε_adam²: the paper
#: (§5.2) shifts its ε grid down by 10⁻⁸.
EPS_SHIFT = {"adabelief": 1e-8}


def grid_epsilons(optimizer: str, epsilons: list[float]) -> list[float]:
    """The ε values `optimizer` is run at for a grid's ε axis."""
    shift = EPS_SHIFT.get(optimizer, 1.0)
    return [float(f"{e * shift:.6g}") for e in epsilons]


def run_grid(
    task: str,
    optimizer: str,
    grid: GridName = "paper",
    *,
    steps: int | None = None,
    seeds: int = 1,
    batch_size: int | None = None,
    device: str | None = None,
    optimizer_settings: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    dtype: torch.dtype = torch.float32,
    task_config: dict[str, Any] | None = None,
) -> GridTable:
    """Train every (α, ε) of the grid for `seeds` seeds into a v2 table (per-seed values kept).

    A diverged seed counts at the task's chance level for that seed only; a cell is
    flagged diverged when any of its seeds diverged; each cell's error is its seeds' mean.
    `task_config`: the task's options (`studies.specs.TASK_OPTIONS`), kept in the fidelity.
    """
    spec = get_task(task, task_config)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    alphas, grid_eps = grid_values(grid)
    epsilons = grid_epsilons(optimizer, grid_eps)
    configs = [TrialConfig(a, e, s) for s in range(seeds) for a in alphas for e in epsilons]
    start = time.perf_counter()
    results = train(
        spec,
        optimizer,
        configs,
        steps=steps,
        batch_size=batch_size,
        device=device,
        optimizer_settings=optimizer_settings,
        progress=progress,
        dtype=dtype,
    )
    seconds = time.perf_counter() - start
    shape = (seeds, len(alphas), len(epsilons))

    def per_seed(pick: Callable[[TrialResult], Any], kind: type) -> list[Any]:
        return np.array([pick(r) for r in results], dtype=kind).reshape(shape).tolist()

    return GridTable.from_seeds(
        error_seeds=per_seed(lambda r: r.objective, float),
        diverged_seeds=per_seed(lambda r: r.diverged, bool),
        test_error_seeds=per_seed(lambda r: r.test_metric, float),
        chance=spec.chance,
        task=task,
        optimizer=optimizer,
        fidelity={
            "steps": steps or spec.default_steps,
            "batch_size": batch_size or spec.default_batch_size,
            "seeds": seeds,
            "grid": grid,
            **({"task_config": dict(task_config)} if task_config else {}),
        },
        settings=dict(optimizer_settings or {}),
        alphas=alphas,
        epsilons=epsilons,
        objective=spec.objective_name,
        seconds=round(seconds, 3),
    )
