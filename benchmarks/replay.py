"""Replay and hierarchical-bootstrap speed on two 21×21 tables at S = 3; one JSON line.

Targets on 2 idle cores: replay_seconds ≤ 60 (6 tuners × 2 optimizers × 100 seeds) and
bootstrap_seconds ≤ 60 (the demo's bootstrap: every tuner on B resampled tables × R
replays each, the defaults of studies.specs.BootstrapSettings). cpu_seconds (all
processes) and the load average before the run help read a timing taken on a shared
machine.

The tables are synthetic, shaped like the paper's Figure 1: Adam's error follows α alone
for small ε and α/ε for large ε (a coupled, diagonal landscape); AvaGrad's follows α alone
with a mild ε effect (separable); three seeds each, with 0.75 pp of noise per seed (the
binomial noise of 4 000 validation examples at 35 % error). Pass real tables (JSON of
`avatune grid`, e.g. the demo's exported grids) to use those.

    python benchmarks/replay.py [TABLE.json TABLE.json] [--seeds 100] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies.bootstrap import bootstrap_replays
from studies.grids import grid_values
from studies.machine import cpu_model
from studies.replay import delta_key, replay_tables
from studies.specs import BootstrapSettings
from studies.table import GridTable
from studies.tuners import TUNERS

CHANCE = 90.0
SEEDS = 3
SEED_NOISE = 0.75


def synthetic_table(optimizer: str, seed: int = 0) -> GridTable:
    """A 21×21 table shaped like Adam's (coupled) or AvaGrad's (separable) Figure-1 grid."""
    alphas, epsilons = grid_values("paper")
    la = np.log10(alphas)[:, None]
    le = np.log10(epsilons)[None, :]
    noise = np.random.default_rng(seed).normal(0.0, 0.15, (len(alphas), len(epsilons)))
    if optimizer == "adam":
        adaptive = 9.0 + 2.5 * (la + 3.0) ** 2  # best α ≈ 1e-3, whatever ε
        sgd_like = 6.5 + 2.5 * (la - le + 1.0) ** 2 + 0.5 * (le - 0.5) ** 2  # α/ε ≈ 0.1, ε ≈ 3
        weight = 1.0 / (1.0 + np.exp(-(le + 3.5) / 0.4))  # phase transition near ε ≈ 3e-4
        error = (1 - weight) * adaptive + weight * sgd_like
    elif optimizer == "avagrad":
        adaptive = 1.0 / (1.0 + np.exp((le + 2.0) / 0.5))  # small-ε regime, mildly worse
        error = 7.0 + 2.5 * (la - 0.5 * adaptive) ** 2 + 1.5 * adaptive  # best α ≈ 1
    else:
        raise ValueError(f"no synthetic table for {optimizer!r}")
    per_seed = (
        error
        + noise
        + np.random.default_rng(seed + 1).normal(0.0, SEED_NOISE, (SEEDS, *error.shape))
    )
    diverged = per_seed >= CHANCE
    return GridTable.from_seeds(
        error_seeds=np.minimum(per_seed, CHANCE),
        diverged_seeds=diverged,
        chance=CHANCE,
        task="synthetic",
        optimizer=optimizer,
        alphas=alphas,
        epsilons=epsilons,
    )


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the replay's worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    """Time the replay and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", type=Path)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.tables:
        tables = [GridTable.load(p) for p in args.tables]
    else:
        tables = [synthetic_table("adam"), synthetic_table("avagrad")]
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    result = replay_tables(tables, TUNERS, args.seeds, 0.5, args.processes)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    settings = BootstrapSettings()
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    boot = bootstrap_replays(
        tables, [t.name for t in result.tables], TUNERS, result.deltas, settings, args.processes
    )
    boot_seconds = time.perf_counter() - started
    boot_cpu = _cpu_seconds() - cpu_started
    runs = len(tables) * len(TUNERS) * args.seeds
    medians = {t.name: {tuner: r.median for tuner, r in t.tuners.items()} for t in result.tables}
    print(
        json.dumps(
            {
                "benchmark": "replay",
                "tables": [list(t.shape) for t in tables],
                "tuners": len(TUNERS),
                "seeds": args.seeds,
                "processes": args.processes,
                "runs": runs,
                "replay_seconds": round(seconds, 2),
                "bootstrap_seconds": round(boot_seconds, 2),
                "bootstrap_cpu_seconds": round(boot_cpu, 1),
                "bootstrap_runs": sum(
                    len(tables) * settings.tables_of(t) * settings.replays_of(t) for t in TUNERS
                ),
                "bootstrap": settings.model_dump(),
                "bootstrap_censored": sum(
                    int(np.sum(c.censored[delta_key(0.5)]))
                    for per_tuner in boot.tables.values()
                    for c in per_tuner.values()
                ),
                "seeds_per_cell": [t.seeds for t in tables],
                "runs_per_s": round(runs / seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "cpu": cpu_model(),
                "load_avg_1m_before": round(load_before, 2),
                "censored": sum(r.n_censored for t in result.tables for r in t.tuners.values()),
                "median_cost": medians,
            }
        )
    )


if __name__ == "__main__":
    main()
