"""Throughput of the batched trainer: full 21×21 grids vs one trial at a time.

mnist1d-mlp, 1000 steps, batch 100: the whole 441-point grid for adam and for avagrad
through the batched trainer, then ≥ 20 trials trained one per `train` call (the
one-by-one path), all in this process. Prints one JSON line. Targets on 2 CPU cores:
≤ 45 s per grid, speedup ≥ 5, peak RSS ≤ 2048 MB.

`flop_utilisation` is the MLP's nominal matrix-product FLOPs per second (forward,
weight and input gradients; elementwise work and the optimizer not counted; runs that
stopped early counted in full) divided by a float32 matmul rate measured here.
On a shared machine, `grid_cpu_seconds_per_core_*` (process CPU time ÷ threads) is the
figure that neighbours' load disturbs least.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies.grids import grid_values
from workers.tasks.mlp import LAYERS
from workers.trainer import TrialConfig, train

TASK = "mnist1d-mlp"


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


def flops_per_trial_step(batch: int) -> float:
    """Matrix-product FLOPs of one MLP training step: forward, weight and input gradients."""
    forward = sum(2 * batch * out * fan_in for out, fan_in in LAYERS)
    input_grads = sum(2 * batch * out * fan_in for out, fan_in in LAYERS[1:])
    return 2 * forward + input_grads


def timed_grid(optimizer: str, steps: int) -> tuple[float, float, int]:
    """Wall and process-CPU seconds to train the paper grid batched; trials diverged."""
    alphas, epsilons = grid_values("paper")
    configs = [TrialConfig(a, e, 0) for a in alphas for e in epsilons]
    start, cpu = time.perf_counter(), time.process_time()
    results = train(TASK, optimizer, configs, steps=steps)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, sum(r.diverged for r in results)


def main() -> None:
    """Run the measurements and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--sequential", type=int, default=20, help="Trials trained one at a time.")
    args = parser.parse_args()

    gflops = gemm_gflops()
    cpu_start = time.process_time()
    grid_seconds, grid_cpu, diverged = {}, {}, {}
    for optimizer in ("adam", "avagrad"):
        grid_seconds[optimizer], grid_cpu[optimizer], diverged[optimizer] = timed_grid(
            optimizer, args.steps
        )
    alphas, epsilons = grid_values("paper")
    points = [(a, e) for a in alphas for e in epsilons]
    stride = max(1, len(points) // args.sequential)
    picked = [TrialConfig(a, e, 0) for a, e in points[::stride][: args.sequential]]
    start = time.perf_counter()
    for config in picked:
        train(TASK, "adam", [config], steps=args.steps)
    sequential_seconds = time.perf_counter() - start

    trials = 2 * len(points)
    batched_seconds = sum(grid_seconds.values())
    batched_rate = trials / batched_seconds
    sequential_rate = len(picked) / sequential_seconds
    model_flops = trials * args.steps * flops_per_trial_step(100)
    print(
        json.dumps(
            {
                "grid_seconds_adam": round(grid_seconds["adam"], 2),
                "grid_seconds_avagrad": round(grid_seconds["avagrad"], 2),
                "sequential_trials_per_s": round(sequential_rate, 3),
                "batched_trials_per_s": round(batched_rate, 2),
                "speedup": round(batched_rate / sequential_rate, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "gemm_gflops": round(gflops, 1),
                "flop_utilisation": round(model_flops / batched_seconds / 1e9 / gflops, 3),
                "model_gflops_per_s": round(model_flops / batched_seconds / 1e9, 1),
                # CPU time ÷ threads: a grid on otherwise idle cores (robust to neighbours)
                "grid_cpu_seconds_per_core_adam": round(
                    grid_cpu["adam"] / torch.get_num_threads(), 2
                ),
                "grid_cpu_seconds_per_core_avagrad": round(
                    grid_cpu["avagrad"] / torch.get_num_threads(), 2
                ),
                "cpu_seconds": round(time.process_time() - cpu_start, 1),
                "diverged_adam": diverged["adam"],
                "diverged_avagrad": diverged["avagrad"],
                "steps": args.steps,
                "sequential_trials": len(picked),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
