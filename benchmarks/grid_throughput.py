"""Throughput of the batched trainer: whole (α, ε) grids vs one trial at a time, any task.

`--task` is any batchable task (mnist1d-mlp by default, mnist1d-resnet, charlm-lstm, …),
built with `--task-config key=value` options; `--steps` and `--batch-size` default to the
task's, `--grid` is `paper` (21×21, default) or `coarse` (11×11). The whole grid trains
for adam and for avagrad through the batched trainer, then `--sequential` (20) of its trials one per
`train` call (the one-by-one path), all in this process. Prints one JSON line. Default
run (mnist1d-mlp, 1000 steps, batch 100, paper grid) targets on 2 CPU cores: ≤ 45 s per
grid, speedup ≥ 5, peak RSS ≤ 2048 MB. The task's data loads in a one-step warm-up first.

`--device` (default: cuda when present, else cpu) is where everything trains, and where
the matmul rate is measured. `flop_utilisation` is the task's nominal matrix-product FLOPs
per second (`Task.step_flops`: forward, weight and input gradients of one configuration's
step; elementwise work and the optimizer not counted; runs that stopped early counted in
full) divided by that device's float32 matmul rate; null for a task that does not say.
`steps_per_s` is grid steps (every configuration of the grid one step further) per second.
On a GPU, `launches_per_step` (CUDA kernels) and `syncs_per_step` (host-device
synchronisations and device-to-host copies) come from the profiler over a short grid run
(`--profile-steps`, setup included). `peak_mb_per_config` is the peak memory of a grid's
training divided by the grid's configurations: allocated CUDA memory on a GPU, resident-set
growth on a CPU.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies.grids import GridName, grid_values
from studies.machine import cpu_model
from workers.device import resolve_device
from workers.tasks import TASKS, Task, get_task
from workers.trainer import TrialConfig, train

OPTIMIZERS = ("adam", "avagrad")


def gemm_gflops(device: torch.device, size: int | None = None, repeats: int = 8) -> float:
    """Best float32 matmul rate (GFLOP/s) over a few square products on `device` (all
    threads on a CPU; TF32 as the trainer leaves it on a GPU)."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def synchronize(device: torch.device) -> None:
    """Wait for `device`'s queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resident_mb() -> float:
    """This process's resident set now, MB (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / 2**20


@dataclass(frozen=True)
class StepProfile:
    """What the profiler saw per grid step: launches and host-device synchronisations."""

    launches: float
    syncs: float


def profile_steps(run: Callable[[int], object], steps: int, device: torch.device) -> StepProfile:
    """CUDA kernels and syncs per step of `run(steps)` on a GPU, counted by torch.profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run(steps)
        synchronize(device)
    events = prof.events()
    launches = sum(1 for e in events if e.device_type == DeviceType.CUDA)
    syncs = sum(1 for e in events if "Synchronize" in e.name or "MemcpyDtoH" in e.name)
    return StepProfile(launches / steps, syncs / steps)


def device_name(device: torch.device) -> str:
    """The device in a few words: the GPU's name, or the CPU's model."""
    if device.type == "cuda":
        return f"{device}: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()}"


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


@dataclass(frozen=True)
class GridRun:
    """One grid trained batched: wall and process-CPU seconds, divergences, peak memory."""

    seconds: float
    cpu_seconds: float
    diverged: int
    peak_mb: float


def timed_grid(
    task: Task,
    optimizer: str,
    configs: list[TrialConfig],
    steps: int,
    batch: int,
    device: torch.device,
) -> GridRun:
    """Train the grid batched on `device`, timed, with its peak memory."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = resident_mb()
    synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    results = train(task, optimizer, configs, steps=steps, batch_size=batch, device=str(device))
    synchronize(device)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return GridRun(wall, cpu, sum(r.diverged for r in results), max(0.0, peak))


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
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when present)."
    )
    parser.add_argument(
        "--profile-steps", type=int, default=20, help="Grid steps the profiler counts (0: off)."
    )
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    config = dict(args.task_config)
    try:
        task = get_task(args.task, config)
    except ValueError as error:
        parser.error(str(error))
    steps = args.steps or task.default_steps
    batch = args.batch_size or task.default_batch_size

    where = str(device)
    configs = grid_configs(args.grid)
    train(task, "adam", configs[:2], steps=1, batch_size=batch, device=where)  # warm
    gflops = gemm_gflops(device)
    cpu_start = time.process_time()
    grids = {
        optimizer: timed_grid(task, optimizer, configs, steps, batch, device)
        for optimizer in OPTIMIZERS
    }
    grid_seconds = {optimizer: run.seconds for optimizer, run in grids.items()}
    stride = max(1, len(configs) // args.sequential)
    picked = configs[::stride][: args.sequential]
    synchronize(device)
    start = time.perf_counter()
    for trial in picked:
        train(task, "adam", [trial], steps=steps, batch_size=batch, device=where)
    synchronize(device)
    sequential_seconds = time.perf_counter() - start
    profiles = {
        optimizer: profile_steps(
            lambda n, o=optimizer: train(task, o, configs, steps=n, batch_size=batch, device=where),
            args.profile_steps,
            device,
        )
        for optimizer in OPTIMIZERS
        if args.profile_steps > 0 and device.type == "cuda"
    }

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
    for optimizer in OPTIMIZERS:
        figures[f"steps_per_s_{optimizer}"] = round(steps / grid_seconds[optimizer], 1)
    for optimizer, found in profiles.items():
        figures[f"launches_per_step_{optimizer}"] = round(found.launches, 1)
        figures[f"syncs_per_step_{optimizer}"] = round(found.syncs, 2)
    for optimizer in OPTIMIZERS:
        per_config = grids[optimizer].peak_mb / len(configs)
        figures[f"peak_mb_per_config_{optimizer}"] = round(per_config, 3)
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
        figures[f"grid_cpu_seconds_per_core_{optimizer}"] = round(
            grids[optimizer].cpu_seconds / threads, 2
        )
    figures["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    for optimizer in OPTIMIZERS:
        figures[f"diverged_{optimizer}"] = grids[optimizer].diverged
    figures |= {
        "steps": steps,
        "batch_size": batch,
        "sequential_trials": len(picked),
        "threads": threads,
        "torch": torch.__version__,
        "device": device_name(device),
        "cpu": cpu_model(),
        "machine": platform.machine(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
