"""The batched trainer: many (α, ε, seed) trials of one task and optimizer as one model.

Trials are grouped by seed (same seed: same initial weights, same minibatches), and each
group is cut into jobs of at most `max_batch` configurations. A job stacks its
configurations' parameters along a leading config dimension, runs one forward/backward
for all of them, and steps them with optim's stacked update rule, whose learning rate
and ε are tensors of shape [C]. Configurations never interact, so each trial's result
equals training it alone. Tasks that cannot batch train one trial per job.

On a GPU, jobs are sized from the device's free memory (`workers.sizing`), each step is
replayed as one CUDA graph where the optimizer allows (`workers.graphed_step`), and a job
that still runs out of memory is split in halves and retried, which changes no result.
"""

from __future__ import annotations

import dataclasses
import logging
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
from workers.graphed_step import GraphedStep
from workers.numerics import apply_cuda_policy
from workers.parallel import Tick, run_jobs
from workers.sizing import DoesNotFit, free_memory, max_configs, peak_bytes, probe_footprint
from workers.tasks import get_task
from workers.tasks.base import BatchedModel, Task

log = logging.getLogger(__name__)

#: Configurations per job on a CPU (the job's working set stays in cache); on a GPU, as
#: many as fit (`job_size`), at most a lease's.
CPU_MAX_BATCH = 32
#: Steps of a sizing probe job (the optimizer state exists from the first).
PROBE_STEPS = 2
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
    stepper = GraphedStep(model, optimizer)
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
        if every and step % every == 0:  # before the step: the state that step reads
            losses[step - 1] = model.train_step(keys[step - 1], weight)
            measured = per_config(measure_optimizer(optimizer, segments), step)
            for c in alive.nonzero().flatten().tolist():
                if measured[c] is not None:
                    records[c].append(measured[c])
            optimizer.step()
            model.after_step()
        else:
            losses[step - 1] = stepper(keys[step - 1], weight)
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


def _scaled(tick: Tick, share: float) -> Tick:
    """A tick that counts `share` of each step (the halves of a split job count half each)."""
    counted = [0.0, 0]

    def scaled(n: int) -> None:
        counted[0] += n * share
        whole = math.floor(counted[0]) - counted[1]
        if whole:
            counted[1] += whole
            tick(whole)

    return scaled


def _train_fitting(run: _Run, job: Job, tick: Tick) -> list[TrialResult]:
    """`_train_job`, split in halves and retried on running out of memory (configurations
    never interact, so the results are the same); `DoesNotFit` if one configuration alone
    runs out."""
    ticked = [0]

    def counting(n: int) -> None:
        ticked[0] += n
        tick(n)

    try:
        return _train_job(run, job, counting)
    except torch.OutOfMemoryError as error:
        first = str(error).splitlines()[0][:300] if str(error) else "out of memory"
    if run.device.type == "cuda":
        torch.cuda.empty_cache()
    tick(-ticked[0])  # the halves count this job's steps again
    if len(job.members) == 1:
        raise DoesNotFit(
            f"one configuration of {run.task.name} with {run.optimizer} at batch size "
            f"{run.batch_size} runs out of memory on {run.device}: {first}"
        )
    half = len(job.members) // 2
    log.warning(
        "a job of %d configurations ran out of memory on %s; training it in halves",
        len(job.members),
        run.device,
    )
    results = []
    for part in (job.members[:half], job.members[half:]):
        share = len(part) / len(job.members)
        results.extend(_train_fitting(run, Job(job.seed, part), _scaled(tick, share)))
    return results


def _probe_peak(run: _Run, configs: int) -> float:
    """Peak bytes of a short job of `configs` copies of the first configuration."""
    probe = dataclasses.replace(
        run, configs=(run.configs[0],) * configs, steps=PROBE_STEPS, diagnostics_every=None
    )
    job = Job(run.configs[0].seed, tuple(range(configs)))
    return peak_bytes(run.device, lambda: _train_job(probe, job, lambda _n: None))


def _cuda_limit(run: _Run) -> int:
    """Configurations per job that fit in the CUDA device's free memory now."""
    key = (run.task, run.optimizer, repr(sorted(run.settings.items())), run.eps_arg)
    footprint = probe_footprint(
        (*key, run.batch_size, run.dtype, str(run.device)), lambda c: _probe_peak(run, c)
    )
    free, total = free_memory(run.device)
    what = f"{run.task.name} with {run.optimizer} at batch size {run.batch_size}"
    return max_configs(footprint, free, total, what=what)


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
    job; on a GPU as many as fit its free memory, `job_size`); others one at a time. A job
    that runs out of memory is split and retried; `DoesNotFit` when one configuration alone
    does not fit. `progress(done, total)` counts job-steps and
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
    apply_cuda_policy(where)
    keep_freed_memory()
    spec.prepare(where, dtype)
    if not spec.batchable:
        limit, min_jobs = 1, 1
    elif max_batch is not None:
        limit, min_jobs = max_batch, 1
    elif on_cpu:
        limit, min_jobs = spec.cpu_max_batch or CPU_MAX_BATCH, workers
    else:
        limit, min_jobs = _cuda_limit(run), 1
    jobs = plan_jobs(configs, limit, min_jobs=min_jobs)
    per_job = run_jobs(
        jobs,
        partial(_train_fitting, run),
        workers=workers,
        total=len(jobs) * steps,
        progress=progress,
    )
    results: list[TrialResult | None] = [None] * len(configs)
    for job, job_results in zip(jobs, per_job, strict=True):
        for index, result in zip(job.members, job_results, strict=True):
            results[index] = result
    return [r for r in results if r is not None]


def job_size(
    task: Task,
    optimizer: str,
    batch_size: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    *,
    optimizer_settings: dict | None = None,
    eps_arg: str | None = "eps",
) -> int:
    """Configurations per job `train` picks by default for this task and optimizer on
    `device`: 1 for a task that cannot batch, the CPU cap on a CPU, else what fits in the
    GPU's free memory (probed once per process); `DoesNotFit` when not even one does."""
    where = device if isinstance(device, torch.device) else resolve_device(device)
    if not task.batchable:
        return 1
    if where.type != "cuda":
        return task.cpu_max_batch or CPU_MAX_BATCH
    apply_cuda_policy(where)
    task.prepare(where, dtype)
    run = _Run(
        task,
        optimizer,
        (TrialConfig(1e-3, 1e-8),),
        1,
        batch_size,
        where,
        dtype,
        dict(optimizer_settings or {}),
        None,
        eps_arg,
    )
    return _cuda_limit(run)
