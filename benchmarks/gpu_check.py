"""Checks of the trainer on a GPU: agreement with the CPU, batch composition, divergence
isolation, memory per configuration, launches and syncs per step.

`python benchmarks/gpu_check.py [SECTION ...] [--device cuda:N] [--quick]` runs the named
sections (default: all), prints a ``[section]`` line per finding with what to expect (a
finding with a target says ``ok`` or ``FAIL``), and ends with one JSON line of every figure
(non-finite figures as null; ``failures`` lists the failed findings). Exit status: 0 when
every target was met, 1 when one was not or a section raised (the other sections still
run), 2 for a usage error. `--device cpu --quick` runs the same code in about a minute on a
CPU (the tests run parts of it, so the script cannot rot between GPU sessions). The
throughput figures come from `benchmarks/grid_throughput.py`; `benchmarks/gpu_check.sh`
runs both, and the worker test suite, in about four minutes on one H100/H200.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studies.grids import grid_values
from workers.device import resolve_device
from workers.graphed_step import WARMUP_STEPS
from workers.numerics import composition_rtol, numerics_label
from workers.sizing import DoesNotFit, free_memory
from workers.tasks import Task, get_task
from workers.tasks.cifar import CifarWRN
from workers.trainer import TrialConfig, TrialResult, job_size, train

#: Divergence flags that may differ between CPU and CUDA on the coarse grid (edge cases).
AGREEMENT_FLAGS = 2
#: Median |Δ validation error| between CPU and CUDA, percentage points.
AGREEMENT_MEDIAN_PP = 0.3
#: The trainer's warning when a job runs out of memory and is split in halves.
SPLIT_LOGGER = "workers.trainer"


@dataclass
class Report:
    """The figures found so far, the human lines printed for them, and the failed ones."""

    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def line(self, section: str, text: str, ok: bool | None = None, **figures: Any) -> None:
        """Print one finding and keep its figures, keyed ``section.name``. A finding with a
        target passes `ok`: the line then says ``ok`` or ``FAIL``, and a failure is kept."""
        verdict = "" if ok is None else "ok: " if ok else "FAIL: "
        print(f"[{section}] {verdict}{text}", flush=True)
        self.figures |= {f"{section}.{k}": v for k, v in figures.items()}
        if ok is not None and not ok:
            self.failures.append(f"{section}: {text}")

    def json(self) -> str:
        """Every figure and the failures as one JSON line (NaN and infinities as null)."""
        figures = {k: _finite(v) for k, v in self.figures.items()}
        return json.dumps(figures | {"failures": self.failures}, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class Scale:
    """How big each check is: the GPU run's sizes, or `--quick`'s for a CPU smoke run.

    The job at sizing's job size trains `job_steps` steps: past the CUDA graph's capture
    (after `WARMUP_STEPS` eager steps) and one replay, so the graph's pool is counted, plus
    the evaluation; `job_cap` (None: none) caps its configurations, for a CPU only, since
    a smaller job would not test the sizing.
    """

    agreement_steps: int = 300
    composition_configs: int = 40
    composition_steps: int = 200
    isolation_steps: int = 60
    memory_configs: int = 441
    memory_steps: int = 20
    job_steps: int = WARMUP_STEPS + 2
    job_cap: int | None = None
    profile_steps: int = 50
    wrn_steps: int = 20
    wrn_images: int = 2000

    @classmethod
    def quick(cls) -> Scale:
        """Sizes for a CPU smoke run (about a minute for every section on two cores)."""
        return cls(
            agreement_steps=20,
            composition_configs=9,
            composition_steps=10,
            isolation_steps=10,
            memory_configs=8,
            memory_steps=2,
            job_cap=8,
            profile_steps=4,
            wrn_steps=2,
            wrn_images=64,
        )


def coarse_grid() -> list[TrialConfig]:
    """The 11×11 coarse grid, seed 0."""
    alphas, epsilons = grid_values("coarse")
    return [TrialConfig(a, e, 0) for a in alphas for e in epsilons]


def max_relative_difference(xs: Sequence[TrialResult], ys: Sequence[TrialResult]) -> float:
    """The largest relative difference of objectives and curve points of paired trials."""
    worst = 0.0
    for x, y in zip(xs, ys, strict=True):
        if x.diverged or y.diverged or len(x.curve) != len(y.curve):
            continue
        a = np.array([x.objective, *x.curve])
        b = np.array([y.objective, *y.curve])
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))))
    return worst


def agreement(report: Report, device: str, scale: Scale, data: Path) -> None:
    """The coarse grid on the device and on the CPU: the same divergences, close errors."""
    configs = coarse_grid() if scale.agreement_steps >= 100 else coarse_grid()[::8]
    for optimizer in ("adam", "avagrad"):
        kwargs = dict(steps=scale.agreement_steps)
        here = train("mnist1d-mlp", optimizer, configs, device=device, **kwargs)
        cpu = train("mnist1d-mlp", optimizer, configs, device="cpu", **kwargs)
        flags = sum(a.diverged != b.diverged for a, b in zip(here, cpu, strict=True))
        gaps = sorted(
            abs(a.objective - b.objective)
            for a, b in zip(here, cpu, strict=True)
            if not (a.diverged or b.diverged)
        )
        median = gaps[len(gaps) // 2] if gaps else 0.0
        worst = gaps[-1] if gaps else 0.0
        report.line(
            "agreement",
            f"{optimizer}: {flags} of {len(configs)} divergence flags differ "
            f"(expect 0-{AGREEMENT_FLAGS}), |Δ error| median {median:.3f} pp "
            f"(expect < {AGREEMENT_MEDIAN_PP}), max {worst:.3f} pp "
            f"({scale.agreement_steps} steps)",
            ok=flags <= AGREEMENT_FLAGS and median < AGREEMENT_MEDIAN_PP,
            **{
                f"{optimizer}_flag_mismatches": flags,
                f"{optimizer}_median_pp": round(median, 4),
                f"{optimizer}_max_pp": round(worst, 4),
            },
        )


def composition(report: Report, device: str, scale: Scale, data: Path) -> None:
    """One job of n configurations vs jobs of 7: each trial's result must not depend on
    which configurations shared its job (bitwise on a CPU; to the documented rtol on CUDA)."""
    configs = coarse_grid()[: scale.composition_configs]
    n = len(configs)
    tolerance = composition_rtol(resolve_device(device))
    for optimizer in ("adam", "avagrad"):
        kwargs = dict(steps=scale.composition_steps, device=device)
        whole = train("mnist1d-mlp", optimizer, configs, max_batch=n, **kwargs)
        cut = train("mnist1d-mlp", optimizer, configs, max_batch=7, **kwargs)
        worst = max_relative_difference(cut, whole)
        flags = sum(a.diverged != b.diverged for a, b in zip(cut, whole, strict=True))
        ok = worst <= tolerance and flags == 0
        verdict = "within" if worst <= tolerance else "OUTSIDE"
        report.line(
            "composition",
            f"{optimizer}: jobs of {n} vs 7, max relative difference {worst:.1e} "
            f"({verdict} the documented rtol {tolerance:.0e}), {flags} divergence flags "
            f"differ (expect 0)",
            ok=ok,
            **{
                f"{optimizer}_max_rel": worst,
                f"{optimizer}_flag_mismatches": flags,
                f"{optimizer}_ok": ok,
            },
        )


def isolation(report: Report, device: str, scale: Scale, data: Path) -> None:
    """Diverging configurations beside healthy ones: flagged, and the others unchanged."""
    healthy = [TrialConfig(1e-2, 1e-8), TrialConfig(1e-1, 1e-3), TrialConfig(3e-3, 1e-1)]
    wild = [TrialConfig(1e38, 1e-8), TrialConfig(1e38, 1e-1)]
    tolerance = composition_rtol(resolve_device(device))
    for optimizer in ("sgd", "adam", "avagrad"):
        kwargs = dict(steps=scale.isolation_steps, device=device)
        mixed = train("mnist1d-mlp", optimizer, healthy + wild, **kwargs)
        alone = train("mnist1d-mlp", optimizer, healthy, **kwargs)
        flags = [r.diverged for r in mixed] == [False] * len(healthy) + [True] * len(wild)
        worst = max_relative_difference(mixed[: len(healthy)], alone)
        report.line(
            "isolation",
            f"{optimizer}: divergence flags right {flags} (expect True), healthy trials' "
            f"max relative difference {worst:.1e} (expect ≤ {tolerance:.0e})",
            ok=flags and worst <= tolerance,
            **{f"{optimizer}_flags_ok": flags, f"{optimizer}_max_rel": worst},
        )


def synthetic_cifar(root: Path, images: int) -> Path:
    """A CIFAR-10 folder of random images (the real one cannot be fetched here)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, count in (("data_batch_1", images), ("test_batch", max(16, images // 10))):
        batch = {
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, count).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    return root


def memory_tasks(scale: Scale, data: Path) -> list[tuple[str, Task, int]]:
    """(label, task, configurations) for the memory and profile checks."""
    wrn = CifarWRN(data_dir=str(synthetic_cifar(data, scale.wrn_images)))
    return [
        ("mnist1d-mlp", get_task("mnist1d-mlp"), scale.memory_configs),
        ("mnist1d-cnn", get_task("mnist1d-cnn"), scale.memory_configs),
        ("mnist1d-resnet", get_task("mnist1d-resnet"), max(2, scale.memory_configs // 4)),
        ("charlm-lstm", get_task("charlm-lstm"), max(2, scale.memory_configs // 2)),
        ("cifar10-wrn", wrn, 1),
    ]


class _Splits(logging.Handler):
    """Counts the trainer's out-of-memory splits ("... training it in halves")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "in halves" in record.getMessage():
            self.count += 1


@contextmanager
def counting_splits() -> Iterator[_Splits]:
    """The out-of-memory splits the trainer logs inside the block (the logger passes
    warnings on even where logging was never configured)."""
    logger = logging.getLogger(SPLIT_LOGGER)
    handler, level = _Splits(), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _mib(value: float) -> str:
    return f"{value / 2**20:.2f} MiB" if math.isfinite(value) else "n/a (CPU)"


def memory(report: Report, device: str, scale: Scale, data: Path) -> None:
    """Peak memory per configuration for each task, the job size sizing picks for it, and
    one job of that size trained (a few steps, graph capture and evaluation included)
    without an out-of-memory split: the target is none, and no `DoesNotFit`."""
    where = resolve_device(device)
    for label, task, n in memory_tasks(scale, data):
        steps = scale.memory_steps if task.batchable else scale.wrn_steps
        configs = [TrialConfig(1e-2, 1e-3, 0)] * n
        work = partial(train, task, "avagrad", configs, steps=steps, device=device)
        try:
            with counting_splits() as splits:
                peak, seconds = _peak(where, work)
            size = job_size(task, "avagrad", task.default_batch_size, torch.float32, where)
        except DoesNotFit as error:
            report.line(
                "memory",
                f"{label}: does not fit: {error.reason}",
                ok=False,
                **{f"{label}_job_size": None, f"{label}_does_not_fit": error.reason},
            )
            continue
        per_config = peak / n
        report.line(
            "memory",
            f"{label}: {_mib(per_config)} per configuration at C={n} "
            f"({seconds / steps * 1e3:.1f} ms/step, setup and evaluation included, "
            f"{splits.count} out-of-memory splits, expect 0); sizing's job size {size}",
            ok=False if splits.count else None,
            **{
                f"{label}_mib_per_config": round(per_config / 2**20, 3),
                f"{label}_job_size": size,
            },
        )
        if task.batchable:
            _job_at_size(report, label, task, size, where, scale)


def _job_at_size(
    report: Report, label: str, task: Task, size: int, where: torch.device, scale: Scale
) -> None:
    """Train one job of `size` configurations (as `train` plans them by default) and count
    the out-of-memory splits it needed."""
    trained = size if scale.job_cap is None else min(size, scale.job_cap)
    configs = [TrialConfig(1e-2, 1e-3, 0)] * trained
    free = free_memory(where)[0] if where.type == "cuda" else math.nan
    work = partial(
        train,
        task,
        "avagrad",
        configs,
        steps=scale.job_steps,
        device=str(where),
        max_batch=trained,
    )
    try:
        with counting_splits() as splits:
            peak, seconds = _peak(where, work)
    except DoesNotFit as error:
        report.line(
            "memory",
            f"{label}: a job of sizing's size {trained} does not fit: {error.reason}",
            ok=False,
            **{f"{label}_oom_splits": None, f"{label}_does_not_fit": error.reason},
        )
        return
    finally:
        if where.type == "cuda":
            torch.cuda.empty_cache()
    share = f"{peak / free:.0%} of the {free / 2**30:.1f} GiB free" if free > 0 else "n/a (CPU)"
    capped = "" if trained == size else f" (capped from {size} for this device)"
    report.line(
        "memory",
        f"{label}: a job of {trained} configurations{capped}, {scale.job_steps} steps: "
        f"{splits.count} out-of-memory splits (expect 0), peak {share}, {seconds:.1f} s",
        ok=splits.count == 0,
        **{
            f"{label}_oom_splits": splits.count,
            f"{label}_job_trained": trained,
            f"{label}_job_peak_gib": round(peak / 2**30, 3),
            f"{label}_job_peak_share": round(peak / free, 3) if free > 0 else None,
            f"{label}_job_seconds": round(seconds, 2),
        },
    )


def _peak(device: torch.device, work: Callable[[], object]) -> tuple[float, float]:
    """Peak bytes allocated beyond what was held before, and seconds, for `work()`."""
    if device.type != "cuda":
        start = time.perf_counter()
        work()
        return math.nan, time.perf_counter() - start
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    work()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before, time.perf_counter() - start


def profile(report: Report, device: str, scale: Scale, data: Path) -> None:
    """Kernels launched and host syncs per training step, from torch.profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    where = resolve_device(device)
    activities = [ProfilerActivity.CPU]
    if where.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    alphas, epsilons = grid_values("paper")
    paper = [TrialConfig(a, e, 0) for a in alphas for e in epsilons][: scale.memory_configs]
    wrn = memory_tasks(scale, data)[-1][1]
    runs = (
        ("mlp-paper-grid", "mnist1d-mlp", paper, scale.profile_steps, None),
        ("wrn-16-4", wrn, [TrialConfig(0.1, 0.1)], scale.wrn_steps, 128),
    )
    for label, task, configs, steps, batch in runs:
        run = partial(train, task, "avagrad", configs, steps=steps, batch_size=batch, device=device)
        run()  # warm: compiled kernels, data on the device, graphs captured
        _, seconds = _peak(where, run)
        with profiler(activities=activities) as prof:
            run()
            if where.type == "cuda":
                torch.cuda.synchronize(where)
        events = prof.events()
        kernels = sum(1 for e in events if e.device_type == DeviceType.CUDA)
        syncs = sum(1 for e in events if "Synchronize" in e.name or "MemcpyDtoH" in e.name)
        counted = (
            f"{kernels / steps:.0f} kernels/step, {syncs / steps:.2f} syncs/step"
            if where.type == "cuda"
            else "no CUDA kernels or syncs on a CPU"
        )
        report.line(
            "profile",
            f"{label}: {seconds / steps * 1e3:.2f} ms/step, {counted} "
            f"({steps} steps, setup and evaluation included)",
            **{
                f"{label}_ms_per_step": round(seconds / steps * 1e3, 3),
                f"{label}_kernels_per_step": round(kernels / steps, 1),
                f"{label}_syncs_per_step": round(syncs / steps, 3),
            },
        )


Section = Callable[[Report, str, Scale, Path], None]
#: The checks, in the order they run (each takes the report, device, sizes and a data folder).
SECTIONS: dict[str, Section] = {
    "agreement": agreement,
    "composition": composition,
    "isolation": isolation,
    "memory": memory,
    "profile": profile,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the asked-for sections; print their lines and one JSON line of figures. 0 when
    every target was met, 1 otherwise (a section that raised counts as failed), 2 for a
    usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=", ".join(SECTIONS))
    parser.add_argument("--device", default=None, help="Default: cuda when present, else cpu.")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes (a CPU smoke run).")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    try:
        where = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    device, scale = str(where), Scale.quick() if args.quick else Scale()
    report = Report({"device": device, "numerics": numerics_label(where)})
    if where.type == "cuda":
        report.figures["gpu"] = torch.cuda.get_device_name(where)
    report.figures["torch"] = torch.__version__
    chosen = list(dict.fromkeys(args.sections)) or list(SECTIONS)
    with tempfile.TemporaryDirectory() as data:
        for section in chosen:
            start = time.perf_counter()
            try:
                SECTIONS[section](report, device, scale, Path(data))
            except Exception as error:  # report it, and still run the other sections
                text = f"{type(error).__name__}: {error}".splitlines()[0][:500]
                report.line(section, f"raised {text}", ok=False)
            report.figures[f"{section}.seconds"] = round(time.perf_counter() - start, 1)
    verdict = "every target met" if not report.failures else f"{len(report.failures)} failed"
    print(f"[summary] {verdict} ({', '.join(chosen)})", flush=True)
    print(report.json(), flush=True)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
