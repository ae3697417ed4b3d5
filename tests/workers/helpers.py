"""Shared helpers for worker tests: tiny task settings and curve comparisons."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from workers.tasks.charlm import CharLSTM
from workers.trainer import TrialConfig, TrialResult

#: 8 configurations: 4 learning rates × 2 epsilons, one seed.
CONFIGS = [TrialConfig(lr, eps, 0) for lr in (1e-3, 1e-2, 1e-1, 1.0) for eps in (1e-8, 1e-1)]


def tiny_charlm() -> CharLSTM:
    """A character LSTM small enough to train in well under a second."""
    return CharLSTM(embedding=4, hidden=8, seq_len=8, eval_windows=4, eval_batch=2)


def max_relative_difference(a: list[float], b: list[float]) -> float:
    """max |a − b| / |b| over two equally long curves (0 for empty curves)."""
    assert len(a) == len(b), (len(a), len(b))
    if not a:
        return 0.0
    x, y = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))


def assert_same_results(
    batched: list[TrialResult], alone: list[TrialResult], rtol: float = 1e-5
) -> None:
    """Curves equal within `rtol`; objectives, test metrics and flags equal."""
    for b, a in zip(batched, alone, strict=True):
        assert max_relative_difference(b.curve, a.curve) <= rtol
        assert b.diverged == a.diverged
        assert np.isclose(b.objective, a.objective, rtol=rtol)
        assert np.isclose(b.test_metric, a.test_metric, rtol=rtol)


def write_fake_cifar(root: Path, train: int = 40, test: int = 10, seed: int = 0) -> Path:
    """A CIFAR-10 folder in the python-pickle batch format with random images; returns root."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name, n in (("data_batch_1", train), ("test_batch", test)):
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    return root
