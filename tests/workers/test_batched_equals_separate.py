"""A batch of configurations trains exactly as each configuration would on its own."""

from __future__ import annotations

import pytest
import torch

from tests.workers.helpers import CONFIGS, assert_same_results, tiny_charlm
from workers.device import resolve_device
from workers.numerics import composition_rtol
from workers.trainer import train

#: 1e-5 on CPU; on CUDA, where cuBLAS/cuDNN kernels may change with C, the documented bound.
RTOL = max(1e-5, composition_rtol(resolve_device()))

CASES = [
    pytest.param("mnist1d-mlp", "adam", dict(steps=12), id="mlp-adam"),
    pytest.param("mnist1d-mlp", "avagrad", dict(steps=12), id="mlp-avagrad"),
    pytest.param("mnist1d-cnn", "adam", dict(steps=6, batch_size=16), id="cnn-adam"),
    pytest.param("charlm-lstm", "avagrad", dict(steps=5, batch_size=4), id="charlm-avagrad"),
    pytest.param("eq11", "adam", dict(steps=200), id="eq11-adam"),
    pytest.param("mnist1d-mlp", "radam", dict(steps=8), id="mlp-radam"),
]


def _task(name: str):
    return tiny_charlm() if name == "charlm-lstm" else name


@pytest.mark.parametrize(("task", "optimizer", "fidelity"), CASES)
def test_batch_of_eight_equals_each_alone(task: str, optimizer: str, fidelity: dict) -> None:
    together = train(_task(task), optimizer, CONFIGS, dtype=torch.float64, max_batch=8, **fidelity)
    alone = [
        train(_task(task), optimizer, [config], dtype=torch.float64, **fidelity)[0]
        for config in CONFIGS
    ]
    assert all(len(r.curve) == min(fidelity["steps"], 100) for r in together)
    assert_same_results(together, alone, rtol=RTOL)


def test_job_composition_does_not_matter() -> None:
    """Cutting the same trials into different jobs gives the same per-trial results."""
    one_job = train("mnist1d-mlp", "avagrad", CONFIGS, steps=10, dtype=torch.float64, max_batch=8)
    three_jobs = train(
        "mnist1d-mlp", "avagrad", CONFIGS, steps=10, dtype=torch.float64, max_batch=3
    )
    assert_same_results(one_job, three_jobs, rtol=RTOL)


def test_mixed_seeds_group_like_separate_calls() -> None:
    """Trials of several seeds in one call equal one call per seed."""
    configs = [c.__class__(c.lr, c.eps, seed) for seed in (0, 1) for c in CONFIGS[:3]]
    mixed = train("mnist1d-mlp", "adam", configs, steps=8, dtype=torch.float64)
    per_seed = [
        result
        for seed in (0, 1)
        for result in train(
            "mnist1d-mlp", "adam", configs[3 * seed : 3 * seed + 3], steps=8, dtype=torch.float64
        )
    ]
    assert_same_results(mixed, per_seed, rtol=RTOL)
