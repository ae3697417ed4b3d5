"""Tabular replay: every tuner, many seeds, on complete grid tables, until δ-success.

Runs go to the smallest δ asked for; costs at larger δ are read off the best-so-far
traces. A δ reads in the task's kind (`studies.deltas`): absolute, or relative (% of f*).
Censored runs (rules in studies.tuners.tabular) enter the statistics at their cost when
stopped (a lower bound) and are counted. Runs are spread over processes in chunks,
slowest tuners first.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from studies.deltas import DeltaKind, delta_target
from studies.objectives import delta_kind_of
from studies.separability import objective, summarize
from studies.specs import SLOW_TUNERS
from studies.table import GridTable
from studies.tuners import TUNERS
from studies.tuners.tabular import MAX_ASKS_FACTOR, TabularRun, run_tabular

FORMAT = "avatune-replay/1"


class CostStats(BaseModel):
    """Run costs (distinct evaluations to δ-success) and their summary."""

    costs: list[int]
    censored: list[bool]
    median: float
    q1: float
    q3: float
    mean: float
    n_censored: int

    @classmethod
    def of(cls, costs: Sequence[int], censored: Sequence[bool]) -> CostStats:
        """Statistics of a list of run costs."""
        return cls(
            costs=list(costs), censored=list(censored), n_censored=sum(censored), **summarize(costs)
        )


class TunerReplay(CostStats):
    """One tuner's runs on one table (seed order), at the primary δ and at the others."""

    tuner: str
    seeds: list[int]
    restarts: list[int]
    asks: list[int]
    errors: dict[str, str] = Field(
        default_factory=dict, description="Seed → error of runs whose sampler raised."
    )
    traces: list[list[float]] = Field(description="Suboptimality after each distinct evaluation.")
    by_delta: dict[str, CostStats] = Field(default_factory=dict)

    def at(self, delta: float) -> CostStats:
        """Costs at δ (the primary δ or one of by_delta)."""
        key = delta_key(delta)
        return self.by_delta.get(key, self)


class TableReplay(BaseModel):
    """All tuners' runs on one grid table."""

    name: str
    task: str
    optimizer: str
    shape: tuple[int, int]
    f_star: float
    tuners: dict[str, TunerReplay]


class ReplayResult(BaseModel):
    """The output of `avatune replay`: per table and tuner, run costs and their summary."""

    format: Literal["avatune-replay/1"] = FORMAT
    delta: float
    deltas: list[float]
    delta_kind: DeltaKind = Field(
        default="absolute", description="absolute: f* + δ; relative: f* + δ/100·|f*|."
    )
    seeds: int
    max_asks_factor: int = MAX_ASKS_FACTOR
    stall_asks: str = "grid size"
    seconds: float = 0.0
    tables: list[TableReplay]

    def table(self, name: str) -> TableReplay:
        """The replay of the table called `name`."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"no table {name!r}; tables: {[t.name for t in self.tables]}")

    @classmethod
    def load(cls, path: str | Path) -> ReplayResult:
        """Read a replay.json."""
        return cls.model_validate(json.loads(Path(path).read_text()))

    def save(self, path: str | Path) -> None:
        """Write replay.json."""
        Path(path).write_text(self.model_dump_json() + "\n")


def delta_key(delta: float) -> str:
    """How a δ is written as a JSON key: '0.5', '1.0'."""
    return repr(float(delta))


def table_names(tables: Sequence[GridTable]) -> list[str]:
    """A unique short name per table: its optimizer, suffixed when repeated."""
    names: list[str] = []
    for table in tables:
        base = table.optimizer
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def replay_table(
    table: GridTable,
    tuners: Sequence[str] = TUNERS,
    seeds: int | Sequence[int] = 100,
    delta: float = 0.5,
    processes: int | None = None,
    *,
    extra_deltas: Sequence[float] = (),
    delta_kind: DeltaKind | None = None,
) -> TableReplay:
    """Replay each tuner over `seeds` on one table (see `replay_tables`)."""
    result = replay_tables(
        [table], tuners, seeds, delta, processes, extra_deltas=extra_deltas, delta_kind=delta_kind
    )
    return result.tables[0]


def replay_tables(
    tables: Sequence[GridTable],
    tuners: Sequence[str] = TUNERS,
    seeds: int | Sequence[int] = 100,
    delta: float = 0.5,
    processes: int | None = None,
    *,
    extra_deltas: Sequence[float] = (),
    names: Sequence[str] | None = None,
    delta_kind: DeltaKind | None = None,
) -> ReplayResult:
    """Run every tuner with every seed on every table until δ-success, in `processes`.

    δ reads in `delta_kind`, the tables' task's kind when None.
    """
    unknown = [t for t in tuners if t not in TUNERS]
    if unknown:
        raise ValueError(f"unknown tuners {unknown}; known tuners: {', '.join(TUNERS)}")
    if delta < 0 or any(d < 0 for d in extra_deltas):
        raise ValueError("δ must be ≥ 0")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    deltas = sorted({float(delta), *map(float, extra_deltas)})
    kind = delta_kind or delta_kind_of(table.task for table in tables)
    names = list(names) if names is not None else table_names(tables)
    values = [objective(table) for table in tables]
    started = time.perf_counter()
    jobs = [
        (k, tuner, chunk)
        for tuner in sorted(tuners, key=lambda t: t not in SLOW_TUNERS)
        for k in range(len(tables))
        for chunk in _chunks(seed_list, 4 if tuner in SLOW_TUNERS else 25)
    ]
    runs: dict[tuple[int, str], list[TabularRun]] = {}
    with executor(processes, len(jobs)) as pool:
        futures = [
            (k, tuner, pool.submit(_run_chunk, tuner, values[k], chunk, deltas[0], kind))
            for k, tuner, chunk in jobs
        ]
        for k, tuner, future in futures:
            runs.setdefault((k, tuner), []).extend(future.result())
    out = []
    for k, table in enumerate(tables):
        f_star = float(values[k].min())
        per_tuner = {
            tuner: _tuner_replay(tuner, seed_list, runs[(k, tuner)], f_star, delta, deltas, kind)
            for tuner in tuners
        }
        out.append(
            TableReplay(
                name=names[k],
                task=table.task,
                optimizer=table.optimizer,
                shape=table.shape,
                f_star=f_star,
                tuners=per_tuner,
            )
        )
    return ReplayResult(
        delta=float(delta),
        deltas=deltas,
        delta_kind=kind,
        seeds=len(seed_list),
        seconds=round(time.perf_counter() - started, 3),
        tables=out,
    )


def _run_chunk(
    tuner: str, values: np.ndarray, seeds: list[int], smallest_delta: float, kind: DeltaKind
) -> list[TabularRun]:
    target = delta_target(smallest_delta, float(values.min()), kind)
    return [run_tabular(tuner, values, seed=seed, target=target) for seed in seeds]


def _tuner_replay(
    tuner: str,
    seeds: list[int],
    runs: list[TabularRun],
    f_star: float,
    delta: float,
    deltas: list[float],
    kind: DeltaKind,
) -> TunerReplay:
    per_delta = {d: first_hits(runs, delta_target(d, f_star, kind)) for d in deltas}
    costs, censored = per_delta[float(delta)]
    return TunerReplay(
        tuner=tuner,
        seeds=seeds,
        restarts=[r.restarts for r in runs],
        asks=[r.asks for r in runs],
        errors={str(s): r.error for s, r in zip(seeds, runs, strict=True) if r.error},
        traces=[[round(v - f_star, 6) for v in r.trace] for r in runs],
        by_delta={delta_key(d): CostStats.of(*per_delta[d]) for d in deltas if d != delta},
        **CostStats.of(costs, censored).model_dump(),
    )


def first_hits(runs: Sequence[TabularRun], target: float) -> tuple[list[int], list[bool]]:
    """Per run: distinct evaluations until best ≤ target (else its cost when stopped), censored."""
    costs, censored = [], []
    for run in runs:
        hit = next((n for n, best in enumerate(run.trace, 1) if best <= target), None)
        costs.append(run.cost if hit is None else hit)
        censored.append(hit is None)
    return costs, censored


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _Inline(Executor):
    """Runs submitted calls at once, in this process (processes=1)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # surfaced by future.result()
            future.set_exception(error)
        return future


def executor(processes: int | None, jobs: int) -> Executor:
    """A process pool of up to `processes` (all cores) for `jobs` jobs; inline for one."""
    workers = min(processes or os.cpu_count() or 1, max(jobs, 1))
    if workers <= 1:
        return _Inline()
    # fork is fastest, but unsafe once other threads run (e.g. inside the server)
    alone = threading.active_count() == 1
    method = "fork" if alone and "fork" in get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method))
