"""The batched trainer: many (α, ε, seed) trials of one task and optimizer as one model.

Trials are grouped by seed (same seed: same initial weights, same minibatches), and each
group is cut into jobs of at most `max_batch` configurations. A job stacks its
configurations' parameters along a leading config dimension, runs one forward/backward
for all of them, and steps them with optim's stacked update rule, whose learning rate
and ε are tensors of shape [C]. Configurations never interact, so each trial's result
equals training it alone. Tasks that cannot batch train one trial per job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor

from optim import get_optimizer, uses_eps
from optim.diagnostics import measure_optimizer, supports
from optim.registry import one_pass_on_cpu
from workers.allocator import keep_freed_memory
from workers.curves import curves
from workers.device import resolve_device
from workers.diagnostics import DiagnosticsRecord, per_config
from workers.divergence import freeze_configs
from workers.parallel import Tick, run_jobs
from workers.tasks import get_task
from workers.tasks.base import BatchedModel, Task

#: Configurations per job: small on a CPU (the job's working set stays in cache).
CPU_MAX_BATCH = 32
CUDA_MAX_BATCH = 4096
#: Steps between checks for non-finite losses (every step's loss is checked).
CHECK_EVERY = 25


@dataclass(frozen=True)
class TrialConfig:
    """One trial: learning rate α, ε, and the seed of its initial weights and data order."""

    lr: float
    eps: float
    seed: int = 0


@dataclass
class TrialResult:
    """What one trial produced.

    `curve` holds ≤ 100 window means of the training loss (cut where a diverged trial went
    non-finite); `seconds` is the wall time of the job that trained it, shared by all the
    trials trained together. `diagnostics`: the mechanism records asked for (AvaGrad family;
    none at steps where the trial was already diverging).
    """

    objective: float
    test_metric: float
    curve: list[float]
    diverged: bool
    seconds: float
    diagnostics: list[DiagnosticsRecord] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    """Everything the jobs of one `train` call share."""

    task: Task
    optimizer: str
    configs: tuple[TrialConfig, ...]
    steps: int
    batch_size: int
    device: torch.device
    dtype: torch.dtype
    settings: dict[str, Any]
    diagnostics_every: int | None = None
    #: The optimizer's constructor argument that is ε (import paths and plugins).
    eps_arg: str | None = "eps"


@dataclass(frozen=True)
class Job:
    """Configurations (indices into the trial list) trained together; all share `seed`."""

    seed: int
    members: tuple[int, ...]


def plan_jobs(configs: Sequence[TrialConfig], max_batch: int, min_jobs: int = 1) -> list[Job]:
    """Group trials by seed, order each group by (α, ε), cut it into near-equal jobs.

    Ordering by α clusters the large learning rates that tend to diverge together, so
    their job can stop early. At least `min_jobs` jobs when there are that many trials.
    """
    groups: dict[int, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config.seed, []).append(index)
    counts = {seed: math.ceil(len(m) / max_batch) for seed, m in groups.items()}
    while sum(counts.values()) < min(min_jobs, len(configs)):
        seed = max(groups, key=lambda s: len(groups[s]) / counts[s])
        counts[seed] += 1
    jobs = []
    for seed, members in groups.items():
        members.sort(key=lambda i: (configs[i].lr, configs[i].eps))
        parts = torch.tensor_split(torch.tensor(members), counts[seed])
        jobs.extend(Job(seed, tuple(p.tolist())) for p in parts if p.numel())
    return jobs


def _optimizer(
    run: _Run, model: BatchedModel, members: tuple[int, ...]
) -> tuple[Any, Tensor | float]:
    """The optimizer over the model's parameters, and the base learning rate(s)."""
    settings = {**run.task.optimizer_defaults(run.optimizer), **run.settings}
    one_pass = run.device.type == "cpu" and one_pass_on_cpu(run.optimizer, settings, run.eps_arg)
    settings.setdefault("fused", one_pass)  # an explicit setting wins
    configs = [run.configs[i] for i in members]
    if not model.stacked:
        lr = configs[0].lr
        return get_optimizer(
            run.optimizer,
            model.parameters,
            lr=lr,
            eps=configs[0].eps,
            eps_arg=run.eps_arg,
            **settings,
        ), lr
    like = dict(dtype=run.dtype, device=run.device)
    lr = torch.tensor([c.lr for c in configs], **like)
    eps = torch.tensor([c.eps for c in configs], **like)
    return get_optimizer(
        run.optimizer,
        model.parameters,
        lr=lr,
        eps=eps,
        stacked=True,
        eps_arg=run.eps_arg,
        **settings,
    ), lr


def _set_lr(optimizer: Any, base: Tensor | float, factor: float) -> None:
    """Scale every configuration's learning rate to base·factor (a schedule)."""
    inner = getattr(optimizer, "inner", None)
    if inner is not None:  # per-config fallback: one param group per configuration
        assert isinstance(base, Tensor)
        for group, lr in zip(inner.param_groups, base.tolist(), strict=True):
            group["lr"] = lr * factor
        return
    for group in optimizer.param_groups:
        group["lr"] = base * factor


def _has_schedule(model: BatchedModel) -> bool:
    return type(model).lr_factor is not BatchedModel.lr_factor


def _train_job(run: _Run, job: Job, tick: Tick) -> list[TrialResult]:
    """Train one job's configurations together and measure them."""
    start = time.perf_counter()
    size = len(job.members)
    model = run.task.build(job.seed, size, device=run.device, dtype=run.dtype)
    keys = run.task.batch_keys(job.seed, run.steps, run.batch_size, run.device)
    optimizer, base_lr = _optimizer(run, model, job.members)
    schedule = _has_schedule(model)
    losses = torch.full((run.steps, size), torch.nan, dtype=run.dtype, device=run.device)
    weight = torch.ones(size, dtype=run.dtype, device=run.device)
    alive = torch.ones(size, dtype=torch.bool)
    every = run.diagnostics_every if supports(optimizer) else None
    segments = model.segments() if every else None
    records: list[list[DiagnosticsRecord]] = [[] for _ in range(size)]
    checked = done = 0
    for step in range(1, run.steps + 1):
        if schedule:
            _set_lr(optimizer, base_lr, model.lr_factor(step))
        losses[step - 1] = model.train_step(keys[step - 1], weight)
        if every and step % every == 0:  # before the step: the state that step reads
            measured = per_config(measure_optimizer(optimizer, segments), step)
            for c in alive.nonzero().flatten().tolist():
                if measured[c] is not None:
                    records[c].append(measured[c])
        optimizer.step()
        model.after_step()
        done = step
        tick(1)
        if step % CHECK_EVERY and step != run.steps:
            continue
        newly = alive & ~torch.isfinite(losses[checked:step]).all(0).cpu()
        checked = step
        if newly.any():
            alive &= ~newly
            if not alive.any():
                break
            dead = newly.nonzero().flatten().to(run.device)
            weight.index_fill_(0, dead, 0.0)
            freeze_configs(model.parameters, optimizer, dead)
    tick(run.steps - done)
    if alive.any():
        objective, test = (m.detach().to("cpu", torch.float64) for m in model.evaluate())
    else:
        objective = test = torch.full((size,), torch.nan, dtype=torch.float64)
    seconds = time.perf_counter() - start
    chance = run.task.chance
    results = []
    for c, curve in enumerate(curves(losses)):
        diverged = not (bool(alive[c]) and math.isfinite(objective[c]))
        value = chance if diverged else float(objective[c])
        test_value = float(test[c]) if not diverged and math.isfinite(test[c]) else chance
        results.append(TrialResult(value, test_value, curve, diverged, seconds, records[c]))
    return results


def _check(
    configs: Sequence[TrialConfig], steps: int, batch_size: int, diagnostics_every: int | None
) -> None:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if diagnostics_every is not None and diagnostics_every < 1:
        raise ValueError(f"diagnostics_every must be >= 1, got {diagnostics_every}")
    for config in configs:
        if not (math.isfinite(config.lr) and config.lr >= 0):
            raise ValueError(f"lr must be finite and >= 0, got {config.lr}")
        if not (math.isfinite(config.eps) and config.eps >= 0):
            raise ValueError(f"eps must be finite and >= 0, got {config.eps}")


def train(
    task: str | Task,
    optimizer: str,
    configs: Sequence[TrialConfig],
    *,
    steps: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    optimizer_settings: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    dtype: torch.dtype = torch.float32,
    max_batch: int | None = None,
    diagnostics_every: int | None = None,
    eps_arg: str | None = "eps",
) -> list[TrialResult]:
    """Train every trial of `configs` on `task` with `optimizer`; results in the same order.

    Trials of a batchable task train as stacked models of up to `max_batch` configurations
    (default: 32 on a CPU, or the task's `cpu_max_batch`, split so that every core has a
    job; 4096 on a GPU); others one at a time. `progress(done, total)` counts job-steps and
    is called from this thread. Deterministic for given seeds.
    `diagnostics_every` = N records the AvaGrad family's mechanism diagnostics before steps
    N, 2N, … (`optim.diagnostics`; other optimizers record none); off (None) costs nothing.
    `optimizer` may be an import path or plugin name (`optim.optimizer_info`), whose ε is the
    constructor argument `eps_arg`.
    """
    spec = task if isinstance(task, Task) else get_task(task)
    uses_eps(optimizer, eps_arg)  # raises ValueError naming the known optimizers
    configs = tuple(configs)
    steps = spec.default_steps if steps is None else steps
    batch_size = spec.default_batch_size if batch_size is None else batch_size
    _check(configs, steps, batch_size, diagnostics_every)
    if not configs:
        return []
    where = resolve_device(device)
    on_cpu = where.type == "cpu"
    workers = torch.get_num_threads() if on_cpu and spec.parallel_jobs else 1
    if max_batch is not None and max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if not spec.batchable:
        limit, min_jobs = 1, 1
    elif max_batch is not None:
        limit, min_jobs = max_batch, 1
    else:
        cpu_limit = spec.cpu_max_batch or CPU_MAX_BATCH
        limit, min_jobs = (cpu_limit if on_cpu else CUDA_MAX_BATCH), workers
    run = _Run(
        spec,
        optimizer,
        configs,
        steps,
        batch_size,
        where,
        dtype,
        dict(optimizer_settings or {}),
        diagnostics_every,
        eps_arg,
    )
    keep_freed_memory()
    spec.prepare(where, dtype)
    jobs = plan_jobs(configs, limit, min_jobs=min_jobs)
    per_job = run_jobs(
        jobs, partial(_train_job, run), workers=workers, total=len(jobs) * steps, progress=progress
    )
    results: list[TrialResult | None] = [None] * len(configs)
    for job, job_results in zip(jobs, per_job, strict=True):
        for index, result in zip(job.members, job_results, strict=True):
            results[index] = result
    return [r for r in results if r is not None]
