"""Hierarchical bootstrap of tuning costs: training noise and tuner noise together.

Level 1 redraws the training seeds of every cell (`studies.resample`), rebuilds the mean
table and re-derives its f* (and so each δ's target, which moves with f* when δ is
relative); level 2 replays each tuner R times, with fresh tuner seeds,
on that table. A statistic's spread over the B replicates (a KM median of R runs, a ratio
of two optimizers' medians, a CGLD gain) then holds both sources of noise. With R below
the main replay's count the interval is, if anything, too wide: the tuner noise of R runs
exceeds that of the main replay's, which is the safe side for a claim. B · R runs per
tuner and table, spread over processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from studies.deltas import DeltaKind, delta_target
from studies.objectives import delta_kind_of
from studies.replay import delta_key, executor, first_hits
from studies.resample import table_resamples
from studies.specs import SLOW_TUNERS, BootstrapSettings
from studies.table import GridTable
from studies.tuners.tabular import run_tabular

#: Tuner seeds of bootstrap replays start here, apart from the main replay's 0, 1, 2, …
SEED_BASE = 1_000_000

__all__ = ["BootstrapCosts", "BootstrapReplay", "BootstrapSettings", "bootstrap_replays"]


class BootstrapCosts(BaseModel):
    """One tuner on one grid's B resampled tables: costs [B][R] and censoring at each δ."""

    costs: dict[str, list[list[int]]]
    censored: dict[str, list[list[bool]]]

    def at(self, delta: float) -> tuple[np.ndarray, np.ndarray]:
        """Costs and censoring flags [B, R] at δ."""
        key = delta_key(delta)
        return np.asarray(self.costs[key], dtype=float), np.asarray(self.censored[key], bool)


class BootstrapReplay(BaseModel):
    """The hierarchical bootstrap of every tuner on every grid (tables by name)."""

    settings: BootstrapSettings
    deltas: list[float]
    delta_kind: DeltaKind = "absolute"
    seconds: float = 0.0
    f_star: dict[str, list[float]] = Field(description="Each replicate's re-derived f*.")
    tables: dict[str, dict[str, BootstrapCosts]]


def bootstrap_replays(
    tables: Sequence[GridTable],
    names: Sequence[str],
    tuners: Sequence[str],
    deltas: Sequence[float],
    settings: BootstrapSettings,
    processes: int | None = None,
    *,
    delta_kind: DeltaKind | None = None,
) -> BootstrapReplay:
    """Replay `tuners` on `settings.tables` resampled copies of each table, at every δ.

    δ reads in `delta_kind`, the tables' task's kind when None.
    """
    started = time.perf_counter()
    deltas = sorted(float(d) for d in deltas)
    kind = delta_kind or delta_kind_of(t.task for t in tables)
    resamples = [
        table_resamples(t, settings.tables, settings.seed + 7919 * k) for k, t in enumerate(tables)
    ]
    jobs = [
        (k, tuner, chunk)
        for tuner in sorted(tuners, key=lambda t: t not in SLOW_TUNERS)
        for k in range(len(tables))
        for chunk in _chunks(settings.tables_of(tuner), 2 if tuner in SLOW_TUNERS else 10)
    ]
    results: dict[tuple[int, str], list[tuple[list[list[int]], list[list[bool]]]]] = {}
    with executor(processes, len(jobs)) as pool:
        futures = [
            (
                k,
                tuner,
                pool.submit(
                    _run_replicates,
                    tuner,
                    resamples[k][chunk.start : chunk.stop],
                    [
                        SEED_BASE + b * settings.replays_of(tuner) + r
                        for b in chunk
                        for r in range(settings.replays_of(tuner))
                    ],
                    settings.replays_of(tuner),
                    deltas,
                    kind,
                ),
            )
            for k, tuner, chunk in jobs
        ]
        for k, tuner, future in futures:
            results.setdefault((k, tuner), []).append(future.result())
    out: dict[str, dict[str, BootstrapCosts]] = {}
    for k, name in enumerate(names):
        out[name] = {}
        for tuner in tuners:
            parts = results.get((k, tuner), [])
            out[name][tuner] = BootstrapCosts(
                costs={
                    delta_key(d): [row for part in parts for row in part[0][i]]
                    for i, d in enumerate(deltas)
                },
                censored={
                    delta_key(d): [row for part in parts for row in part[1][i]]
                    for i, d in enumerate(deltas)
                },
            )
    return BootstrapReplay(
        settings=settings,
        deltas=deltas,
        delta_kind=kind,
        seconds=round(time.perf_counter() - started, 3),
        f_star={name: resamples[k].min(axis=(1, 2)).tolist() for k, name in enumerate(names)},
        tables=out,
    )


def _run_replicates(
    tuner: str,
    tables: np.ndarray,
    seeds: list[int],
    replays: int,
    deltas: list[float],
    kind: DeltaKind = "absolute",
) -> tuple[list[list[list[int]]], list[list[list[bool]]]]:
    """Costs and censoring [δ][b][r] of `replays` runs on each of `tables`, each table's
    targets from its own f*."""
    costs: list[list[list[int]]] = [[] for _ in deltas]
    censored: list[list[list[bool]]] = [[] for _ in deltas]
    for b, values in enumerate(tables):
        f_star = float(values.min())
        targets = [delta_target(d, f_star, kind) for d in deltas]
        runs = [
            run_tabular(tuner, values, seed=seeds[b * replays + r], target=targets[0])
            for r in range(replays)
        ]
        for i, target in enumerate(targets):
            hit_costs, hit_censored = first_hits(runs, target)
            costs[i].append(hit_costs)
            censored[i].append(hit_censored)
    return costs, censored


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]
