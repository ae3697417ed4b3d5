"""Throughput of the batched trainer: whole (α, ε) grids vs one trial at a time, any task.

`--task` is any batchable task (mnist1d-mlp by default, mnist1d-resnet, charlm-lstm, …),
built with `--task-config key=value` options; `--steps` and `--batch-size` default to the
task's, `--grid` is `paper` (21×21, default) or `coarse` (11×11). The whole grid trains
for adam and for avagrad through the batched trainer, then `--sequential` (20) of its trials one per
`train` call (the one-by-one path), all in this process. Prints one JSON line. Default
run (mnist1d-mlp, 1000 steps, batch 100, paper grid) targets on 2 CPU cores: ≤ 45 s per
grid, speedup ≥ 5, peak RSS ≤ 2048 MB. The task's data loads in a one-step warm-up first.

`flop_utilisation` is the task's nominal matrix-product FLOPs per second
(`Task.step_flops`: forward, weight and input gradients of one configuration's step;
elementwise work and the optimizer not counted; runs that stopped early counted in full)
divided by a float32 matmul rate measured here; null for a task that does not say.
On a shared machine, `grid_cpu_seconds_per_core_*` (process CPU time ÷ threads) is the
figure that neighbours' load disturbs least.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies.grids import GridName, grid_values
from studies.machine import cpu_model
from workers.tasks import TASKS, Task, get_task
from workers.trainer import TrialConfig, train

OPTIMIZERS = ("adam", "avagrad")


def gemm_gflops(size: int = 1024, repeats: int = 8) -> float:
    """Best float32 matmul rate (GFLOP/s) over a few square products, all threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def option(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value as JSON if it parses: 64, 0.5, true; else the string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def grid_configs(grid: GridName) -> list[TrialConfig]:
    """Every (α, ε) of the grid, seed 0."""
    alphas, epsilons = grid_values(grid)
    return [TrialConfig(a, e, 0) for a in alphas for e in epsilons]


def timed_grid(
    task: Task, optimizer: str, configs: list[TrialConfig], steps: int, batch: int
) -> tuple[float, float, int]:
    """Wall and process-CPU seconds to train the grid batched; trials diverged."""
    start, cpu = time.perf_counter(), time.process_time()
    results = train(task, optimizer, configs, steps=steps, batch_size=batch)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, sum(r.diverged for r in results)


def rounded(value: float, digits: int) -> float | None:
    """`value` rounded, None (JSON null) when it is not finite."""
    return round(value, digits) if math.isfinite(value) else None


def main() -> None:
    """Run the measurements and print the JSON line."""
    batchable = [name for name, task in TASKS.items() if task.batchable]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d-mlp", choices=batchable)
    parser.add_argument(
        "--task-config",
        type=option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A task option (repeatable), e.g. hidden=64.",
    )
    parser.add_argument("--steps", type=int, default=None, help="Default: the task's.")
    parser.add_argument("--batch-size", type=int, default=None, help="Default: the task's.")
    parser.add_argument("--grid", choices=["paper", "coarse"], default="paper")
    parser.add_argument("--sequential", type=int, default=20, help="Trials trained one at a time.")
    args = parser.parse_args()
    config = dict(args.task_config)
    try:
        task = get_task(args.task, config)
    except ValueError as error:
        parser.error(str(error))
    steps = args.steps or task.default_steps
    batch = args.batch_size or task.default_batch_size

    gflops = gemm_gflops()
    configs = grid_configs(args.grid)
    train(task, "adam", configs[:2], steps=1, batch_size=batch)  # data loaded, kernels warm
    cpu_start = time.process_time()
    grid_seconds, grid_cpu, diverged = {}, {}, {}
    for optimizer in OPTIMIZERS:
        grid_seconds[optimizer], grid_cpu[optimizer], diverged[optimizer] = timed_grid(
            task, optimizer, configs, steps, batch
        )
    stride = max(1, len(configs) // args.sequential)
    picked = configs[::stride][: args.sequential]
    start = time.perf_counter()
    for trial in picked:
        train(task, "adam", [trial], steps=steps, batch_size=batch)
    sequential_seconds = time.perf_counter() - start

    trials = len(OPTIMIZERS) * len(configs)
    batched_seconds = sum(grid_seconds.values())
    batched_rate = trials / batched_seconds
    sequential_rate = len(picked) / sequential_seconds
    model_gflops = trials * steps * task.step_flops(batch) / batched_seconds / 1e9
    threads = torch.get_num_threads()
    figures: dict[str, Any] = {
        "task": args.task,
        "task_config": config,
        "grid": args.grid,
        "grid_points": len(configs),
    }
    for optimizer in OPTIMIZERS:
        figures[f"grid_seconds_{optimizer}"] = round(grid_seconds[optimizer], 2)
    figures |= {
        "sequential_trials_per_s": round(sequential_rate, 3),
        "batched_trials_per_s": round(batched_rate, 2),
        "speedup": round(batched_rate / sequential_rate, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "gemm_gflops": round(gflops, 1),
        "flop_utilisation": rounded(model_gflops / gflops, 3),
        "model_gflops_per_s": rounded(model_gflops, 1),
    }
    for optimizer in OPTIMIZERS:  # CPU time ÷ threads: a grid on otherwise idle cores
        figures[f"grid_cpu_seconds_per_core_{optimizer}"] = round(grid_cpu[optimizer] / threads, 2)
    figures["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    for optimizer in OPTIMIZERS:
        figures[f"diverged_{optimizer}"] = diverged[optimizer]
    figures |= {
        "steps": steps,
        "batch_size": batch,
        "sequential_trials": len(picked),
        "threads": threads,
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "machine": platform.machine(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
