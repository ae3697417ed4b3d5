"""CIFAR-10 from a local folder in the standard python-pickle batch format.

`AVATUNE_DATA_DIR` (or an explicit folder) holds `cifar-10-batches-py/` or its files
directly: `data_batch_1` … `data_batch_5` and `test_batch`, each a pickled dict with
`data` (uint8 [N, 3072], channel-major 32×32 images) and `labels`. Nothing is downloaded.
The last 5000 training images (a tenth when there are fewer than 50 000) validate.
"""

from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SUBFOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
VALIDATION = 5000


@dataclass(frozen=True)
class CifarSplits:
    """Normalised images [N, 3, 32, 32] (float32) and labels [N] of each split."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor


def data_folder(explicit: str | Path | None = None) -> Path:
    """The folder holding the batch files; FileNotFoundError saying what is missing."""
    root = explicit or os.environ.get("AVATUNE_DATA_DIR")
    if not root:
        raise FileNotFoundError(
            "cifar10-wrn reads CIFAR-10 from a local folder: set AVATUNE_DATA_DIR to the folder "
            f"holding {SUBFOLDER}/ (the python-pickle batches); nothing is downloaded"
        )
    base = Path(root)
    folder = base / SUBFOLDER if (base / SUBFOLDER).is_dir() else base
    if not (folder / TEST_FILE).exists() or not (folder / TRAIN_FILES[0]).exists():
        raise FileNotFoundError(f"no CIFAR-10 batches ({TRAIN_FILES[0]}, {TEST_FILE}) in {folder}")
    return folder


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels int64 [N] of one pickled batch file."""
    with path.open("rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return data, labels


@functools.cache
def cifar_splits(folder: Path) -> CifarSplits:
    """Read, split and normalise (per-channel train statistics) the batches in `folder`."""
    parts = [read_batch(folder / name) for name in TRAIN_FILES if (folder / name).exists()]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts])).float() / 255
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    test_images, test_labels = read_batch(folder / TEST_FILE)
    n = images.shape[0]
    held_out = VALIDATION if n >= 50_000 else max(1, n // 10)
    train = images[: n - held_out]
    mean = train.mean((0, 2, 3), keepdim=True)
    std = train.std((0, 2, 3), keepdim=True)

    def normalise(x: Tensor) -> Tensor:
        return ((x - mean) / std).contiguous()

    return CifarSplits(
        normalise(train),
        labels[: n - held_out],
        normalise(images[n - held_out :]),
        labels[n - held_out :],
        normalise(torch.from_numpy(test_images).float() / 255),
        torch.from_numpy(test_labels),
    )


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random 32×32 crops of 4-pixel zero-padded images and random horizontal flips."""
    n = x.shape[0]
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy.view(n, 1) + torch.arange(32)).to(x.device)
    cols = (dx.view(n, 1) + torch.arange(32)).to(x.device)
    cols = torch.where(flip.view(n, 1).to(x.device), cols.flip(1), cols)
    index = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[index, channel, rows.view(n, 1, 32, 1), cols.view(n, 1, 1, 32)]
