"""MNIST-1D (Greydanus 2020), generated locally by the `mnist1d` package and cached.

`make_dataset` (seed 42, the package's other defaults) with 12000 examples split 8000 /
4000: the first 4000 of the 8000 train, the last 4000 validate, the 4000 others test.
Validation is this large because the δ we report is 0.5 pp: a cell's error at 35 %
has a binomial SE of 0.75 pp on 4000 examples (2.1 pp on the former 500). Inputs are
standardised per position with the statistics of the 4000 training examples only.
"""

from __future__ import annotations

import functools
import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

TRAIN, VALIDATION, TEST = 4000, 4000, 4000
#: Examples generated: `make_dataset` puts the first TRAIN + VALIDATION into `x`, the rest
#: into `x_test` (split_ix = int(NUM_SAMPLES · TRAIN_SPLIT); the 0.5 guards the rounding).
NUM_SAMPLES = TRAIN + VALIDATION + TEST
TRAIN_SPLIT = (TRAIN + VALIDATION + 0.5) / NUM_SAMPLES
CACHE_VERSION = 2
_LOCK = threading.Lock()  # generation draws from numpy's global RNG: one thread at a time


@dataclass(frozen=True)
class Splits:
    """Inputs [N, 40] and integer labels [N] of the train, validation and test splits."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor

    def to(self, device: torch.device, dtype: torch.dtype) -> Splits:
        """The splits with inputs of `dtype` on `device` (labels stay int64)."""
        return Splits(
            *(
                t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
                for t in (
                    self.x_train,
                    self.y_train,
                    self.x_val,
                    self.y_val,
                    self.x_test,
                    self.y_test,
                )
            )
        )


def cache_dir() -> Path:
    """Where generated datasets are cached: `AVATUNE_CACHE_DIR`, else ~/.cache/avatune."""
    return Path(os.environ.get("AVATUNE_CACHE_DIR") or Path.home() / ".cache" / "avatune")


def _generate() -> dict[str, np.ndarray]:
    """Run mnist1d's generator without disturbing the caller's global random state."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split = NUM_SAMPLES, TRAIN_SPLIT
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    raw = {key: np.asarray(data[key]) for key in ("x", "y", "x_test", "y_test")}
    if raw["x"].shape[0] != TRAIN + VALIDATION or raw["x_test"].shape[0] != TEST:
        raise RuntimeError(
            f"mnist1d gave {raw['x'].shape[0]} / {raw['x_test'].shape[0]} examples, "
            f"expected {TRAIN + VALIDATION} / {TEST}"
        )
    return raw


def _load_raw() -> dict[str, np.ndarray]:
    """The raw arrays, from the on-disk cache when present, else generated (and cached)."""
    path = cache_dir() / f"mnist1d-seed42-v{CACHE_VERSION}.npz"
    if path.exists():
        with np.load(path) as cached:
            return {key: cached[key] for key in cached.files}
    raw = _generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, **raw)
        partial.replace(path)
    except OSError:
        pass  # a read-only home only costs regeneration next time
    return raw


def mnist1d_splits() -> Splits:
    """The standardised float64 CPU splits (generated once per process, thread-safe)."""
    with _LOCK:
        return _splits()


@functools.cache
def _splits() -> Splits:
    raw = _load_raw()
    x = torch.from_numpy(raw["x"]).to(torch.float64)
    y = torch.from_numpy(raw["y"]).to(torch.int64)
    x_test = torch.from_numpy(raw["x_test"]).to(torch.float64)
    y_test = torch.from_numpy(raw["y_test"]).to(torch.int64)
    x_train, x_val = x[:TRAIN], x[TRAIN : TRAIN + VALIDATION]
    mean, std = x_train.mean(0), x_train.std(0)

    def standardise(t: Tensor) -> Tensor:
        return ((t - mean) / std).contiguous()

    return Splits(
        standardise(x_train),
        y[:TRAIN].clone(),
        standardise(x_val),
        y[TRAIN : TRAIN + VALIDATION].clone(),
        standardise(x_test),
        y_test,
    )


def mnist1d_on(device: torch.device, dtype: torch.dtype) -> Splits:
    """The splits on a device, in a dtype (cached: every batch of trials shares them)."""
    with _LOCK:
        return _moved(device, dtype)


@functools.cache
def _moved(device: torch.device, dtype: torch.dtype) -> Splits:
    return _splits().to(device, dtype)
