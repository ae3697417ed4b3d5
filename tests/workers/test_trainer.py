"""The trainer's contract: determinism, results, progress, argument checks, job planning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from tests.workers.helpers import CONFIGS, assert_same_results
from workers.trainer import TrialConfig, TrialResult, plan_jobs, train


def test_same_call_same_results() -> None:
    first = train("mnist1d-mlp", "avagrad", CONFIGS, steps=20)
    second = train("mnist1d-mlp", "avagrad", CONFIGS, steps=20)
    assert_same_results(first, second, rtol=0)


def test_seed_changes_init_and_data_order() -> None:
    a, b = train(
        "mnist1d-mlp", "adam", [TrialConfig(1e-2, 1e-8, 0), TrialConfig(1e-2, 1e-8, 1)], steps=10
    )
    assert a.curve != b.curve


def test_result_fields() -> None:
    results = train("mnist1d-mlp", "adam", CONFIGS[:3], steps=250)
    for result in results:
        assert isinstance(result, TrialResult)
        assert 0 <= result.objective <= 100 and 0 <= result.test_metric <= 100
        assert len(result.curve) == 100 and all(math.isfinite(v) for v in result.curve)
        assert result.seconds > 0 and not result.diverged
    assert results[1].curve[-1] < results[1].curve[0]  # lr 1e-2 learns


def test_progress_reaches_total_and_is_monotone() -> None:
    seen: list[tuple[int, int]] = []
    train("mnist1d-mlp", "sgd", CONFIGS, steps=40, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] > 0
    assert all(x[0] <= y[0] for x, y in itertools.pairwise(seen))


def test_default_fidelity_and_empty() -> None:
    assert train("mnist1d-mlp", "adam", []) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(task="nope", optimizer="adam"), "unknown task"),
        (dict(task="mnist1d-mlp", optimizer="nope"), "unknown optimizer"),
        (dict(task="mnist1d-mlp", optimizer="adam", steps=0), "steps"),
        (dict(task="mnist1d-mlp", optimizer="adam", device="tpu"), "device"),
        (dict(task="mnist1d-mlp", optimizer="adam", configs=[TrialConfig(-1.0, 0.1)]), "lr"),
        (dict(task="mnist1d-mlp", optimizer="adam", configs=[TrialConfig(0.1, math.nan)]), "eps"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    kwargs.setdefault("configs", CONFIGS[:1])
    with pytest.raises(ValueError, match=message):
        train(**kwargs)


def test_plan_groups_by_seed_and_orders_by_lr() -> None:
    configs = [TrialConfig(lr, 0.1, seed) for seed in (1, 0) for lr in (3.0, 1.0, 2.0)]
    jobs = plan_jobs(configs, max_batch=2)
    assert [job.seed for job in jobs] == [1, 1, 0, 0]
    assert [len(job.members) for job in jobs] == [2, 1, 2, 1]
    assert jobs[0].members == (1, 2)  # seed 1: lr 1.0, then 2.0
    assert sorted(i for job in jobs for i in job.members) == list(range(6))


def test_plan_makes_a_job_per_worker() -> None:
    jobs = plan_jobs([TrialConfig(1.0, 0.1)] * 8, max_batch=32, min_jobs=2)
    assert [len(job.members) for job in jobs] == [4, 4]


def test_float64_and_float32_agree_roughly() -> None:
    config = [TrialConfig(1e-2, 1e-3)]
    double = train("mnist1d-mlp", "avagrad", config, steps=30, dtype=torch.float64)[0]
    single = train("mnist1d-mlp", "avagrad", config, steps=30)[0]
    assert abs(double.curve[-1] - single.curve[-1]) < 1e-3


@pytest.mark.parametrize(
    ("optimizer", "settings", "fused"),
    [
        ("adam", {}, True),
        ("avagrad", {}, True),
        ("delayed_adam", {}, True),
        ("avagrad", {"variant": "paper"}, False),  # its fused path is torch.compile
        ("adabelief", {}, False),
        ("sgd", {}, False),
    ],
)
def test_cpu_jobs_take_one_pass_optimizer_steps(optimizer, settings, fused) -> None:
    """On CPU the trainer turns on fused steps only where they are one-pass kernels."""
    from workers.tasks import get_task
    from workers.trainer import _optimizer, _Run

    task = get_task("mnist1d-mlp")
    cpu = torch.device("cpu")
    configs = tuple(CONFIGS[:2])
    run = _Run(task, optimizer, configs, 1, 10, cpu, torch.float32, settings)
    task.prepare(cpu, torch.float32)
    model = task.build(0, len(configs), device=cpu, dtype=torch.float32)
    built, _ = _optimizer(run, model, (0, 1))
    assert getattr(built, "fused", False) is fused
