"""Job sizing from free memory, and the out-of-memory split, tested on CPU with fakes.

The GPU calls (`torch.cuda.mem_get_info`, peak memory) are replaced by fakes with known
answers, and out-of-memory errors are injected into a real task's training step, so the
arithmetic, the split and the hand-back run here exactly as they would on a card.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch

from studies.protocol import MAX_LEASE_TRIALS
from tests.workers.helpers import CONFIGS
from workers import sizing, trainer
from workers.sizing import (
    HEADROOM,
    MIB,
    RESERVE_BYTES,
    SAFETY,
    DoesNotFit,
    Footprint,
    free_memory,
    max_configs,
    probe_footprint,
)
from workers.tasks import get_task
from workers.tasks.base import BatchedModel
from workers.tasks.mlp import MnistMLP
from workers.trainer import TrialConfig, job_size, train

GIB = 2**30


def test_footprint_is_the_line_through_two_probes() -> None:
    footprint = Footprint.from_peaks((1, 110 * MIB), (4, 140 * MIB))
    assert footprint.per_config == pytest.approx(10 * MIB)
    assert footprint.fixed == pytest.approx(100 * MIB)
    assert footprint.bytes(8) == pytest.approx(100 * MIB + 8 * 10 * MIB * SAFETY)


def test_probe_noise_never_gives_a_negative_part() -> None:
    shrinking = Footprint.from_peaks((1, 50 * MIB), (4, 40 * MIB))  # the larger probe read less
    assert shrinking.per_config >= 40 * MIB / 4 / 8  # an eighth of the larger's mean
    assert shrinking.fixed >= 0
    with pytest.raises(ValueError, match="more configurations"):
        Footprint.from_peaks((4, 1.0), (4, 2.0))


def test_max_configs_divides_the_usable_memory() -> None:
    footprint = Footprint(fixed=100 * MIB, per_config=10 * MIB)
    free, total = 8 * GIB, 80 * GIB
    usable = min(free * HEADROOM, free - RESERVE_BYTES)
    expected = math.floor((usable - 100 * MIB) / (10 * MIB * SAFETY))
    assert max_configs(footprint, free, total) == expected
    assert footprint.bytes(expected) <= usable < footprint.bytes(expected + 1)


def test_max_configs_is_capped_at_a_lease() -> None:
    tiny = Footprint(fixed=0, per_config=1024)
    assert max_configs(tiny, 100 * GIB, 140 * GIB) == MAX_LEASE_TRIALS
    assert max_configs(tiny, 100 * GIB, 140 * GIB, cap=7) == 7


def test_one_configuration_too_large_says_what_it_needs_and_what_is_free() -> None:
    charlm = Footprint(fixed=200 * MIB, per_config=3 * GIB)
    with pytest.raises(DoesNotFit) as raised:
        max_configs(charlm, 2 * GIB, 16 * GIB, what="charlm-lstm with avagrad")
    reason = raised.value.reason
    assert "charlm-lstm with avagrad" in reason
    assert f"{charlm.bytes(1) / MIB:.0f} MiB" in reason
    assert f"{2 * GIB / MIB:.0f} MiB" in reason


def test_free_memory_counts_the_allocators_unused_cache(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 5 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 4 * GIB)
    assert free_memory(torch.device("cuda:0")) == (4 * GIB, 80 * GIB)


def test_a_footprint_is_probed_once_per_key() -> None:
    sizing.forget_footprints()
    calls: list[int] = []

    def probe(configs: int) -> float:
        calls.append(configs)
        return 64 * MIB + configs * 8 * MIB

    first = probe_footprint(("task", "opt"), probe)
    again = probe_footprint(("task", "opt"), probe)
    assert first == again == Footprint(fixed=64 * MIB, per_config=8 * MIB)
    assert calls == list(sizing.PROBE_SIZES)
    sizing.forget_footprints()


def test_a_probe_out_of_memory_at_one_configuration_does_not_fit() -> None:
    sizing.forget_footprints()

    def probe(configs: int) -> float:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 30.00 GiB")

    with pytest.raises(DoesNotFit, match=r"Tried to allocate 30\.00 GiB"):
        probe_footprint(("huge",), probe)
    assert ("huge",) not in sizing._FOOTPRINTS  # not remembered: memory may free up


def test_a_probe_out_of_memory_at_the_larger_size_counts_everything_per_config() -> None:
    sizing.forget_footprints()

    def probe(configs: int) -> float:
        if configs > 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return 6 * GIB

    assert probe_footprint(("big",), probe) == Footprint(fixed=0.0, per_config=6 * GIB)
    sizing.forget_footprints()


def test_job_size_on_a_cpu_is_the_cpu_cap() -> None:
    mlp = get_task("mnist1d-mlp")
    assert job_size(mlp, "avagrad", 100, device="cpu") == (
        mlp.cpu_max_batch or trainer.CPU_MAX_BATCH
    )


def test_the_trainer_sizes_jobs_from_the_probed_peaks_and_free_memory(monkeypatch) -> None:
    """`_cuda_limit` with the GPU calls faked: the probes really train, their 'peak' is the
    bytes of the job's parameters, and the device reports 1 GiB free."""
    sizing.forget_footprints()
    built: list[int] = []
    task = get_task("mnist1d-mlp")

    def fake_peak(device: torch.device, work) -> float:
        before = len(built)
        work()
        assert len(built) == before + 1  # the probe trained one job
        return 10 * MIB + built[-1] * 2 * MIB

    original = MnistMLP.build

    def counting_build(self, seed, configs, **kwargs) -> BatchedModel:
        built.append(configs)
        return original(self, seed, configs, **kwargs)

    monkeypatch.setattr(MnistMLP, "build", counting_build)
    monkeypatch.setattr(trainer, "peak_bytes", fake_peak)
    monkeypatch.setattr(trainer, "free_memory", lambda device: (1.0 * GIB, 80.0 * GIB))
    run = trainer._Run(
        task, "avagrad", (TrialConfig(1e-2, 1e-3),), 5, 100, torch.device("cpu"),
        torch.float32, {},
    )  # fmt: skip
    limit = trainer._cuda_limit(run)
    assert built == list(sizing.PROBE_SIZES)
    usable = min(GIB * HEADROOM, GIB - RESERVE_BYTES)
    assert limit == math.floor((usable - 10 * MIB) / (2 * MIB * SAFETY))
    assert trainer._cuda_limit(run) == limit and len(built) == 2  # probed once
    sizing.forget_footprints()


class _OutOfMemoryAbove(MnistMLP):
    """MNIST-1D's MLP whose jobs of more than `limit` configurations run out of memory at
    step `at` (after some progress was counted), as a card would."""

    def __init__(self, limit: int, at: int = 3) -> None:
        super().__init__()
        self.limit, self.at = limit, at
        self.sizes: list[int] = []

    def build(self, seed, configs, *, device, dtype) -> BatchedModel:
        self.sizes.append(configs)
        model = super().build(seed, configs, device=device, dtype=dtype)
        if configs <= self.limit:
            return model
        step = model.train_step
        count = [0]

        def failing(keys, weight):
            count[0] += 1
            if count[0] == self.at:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return step(keys, weight)

        model.train_step = failing  # type: ignore[method-assign]
        return model


def test_an_out_of_memory_job_is_split_until_it_fits_with_the_same_results(caplog) -> None:
    task = _OutOfMemoryAbove(limit=2)
    progress: list[tuple[int, int]] = []
    with caplog.at_level(logging.WARNING, logger="workers.trainer"):
        split = train(
            task, "avagrad", CONFIGS, steps=12, max_batch=8,
            progress=lambda done, total: progress.append((done, total)),
        )  # fmt: skip
    reference = train(get_task("mnist1d-mlp"), "avagrad", CONFIGS, steps=12, max_batch=8)
    assert task.sizes == [8, 4, 2, 2, 4, 2, 2]  # halves, then quarters, in order
    for a, b in zip(split, reference, strict=True):
        assert a.curve == b.curve  # bit for bit: configurations never interact
        assert (a.objective, a.test_metric, a.diverged) == (b.objective, b.test_metric, b.diverged)
    assert progress[-1] == (12, 12)  # the failed attempts' steps are not counted twice
    assert all(done <= total for done, total in progress)
    splits = [r for r in caplog.records if "training it in halves" in r.getMessage()]
    assert [r.args[0] for r in splits] == [8, 4, 4]


def test_one_configuration_out_of_memory_does_not_fit() -> None:
    task = _OutOfMemoryAbove(limit=0)
    with pytest.raises(DoesNotFit) as raised:
        train(task, "adam", CONFIGS[:2], steps=6, max_batch=2)
    reason = raised.value.reason
    assert "mnist1d-mlp" in reason and "adam" in reason and "batch size" in reason
    assert "Tried to allocate 2.00 GiB" in reason


def test_other_errors_are_not_taken_for_memory() -> None:
    class Broken(MnistMLP):
        def build(self, seed, configs, *, device, dtype):
            raise RuntimeError("a bug, not memory")

    with pytest.raises(RuntimeError, match="a bug"):
        train(Broken(), "adam", CONFIGS[:2], steps=3)
