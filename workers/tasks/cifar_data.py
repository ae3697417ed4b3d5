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


def draw_augmentation(n: int, generator: torch.Generator) -> Tensor:
    """Per-image (dx, dy, flip) [3, n] int64 from the (CPU) generator: crop offsets in 0…8."""
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.stack([dx, dy, flip.long()])


def apply_augmentation(x: Tensor, draws: Tensor) -> Tensor:
    """Crop each 4-pixel zero-padded image at (dx, dy), mirrored where flip: one gather on
    x's device (`draws` [3, n] on that device too)."""
    n, channels = x.shape[0], x.shape[1]
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dx, dy, flip = draws[0].view(n, 1), draws[1].view(n, 1), draws[2].view(n, 1).bool()
    offsets = torch.arange(32, device=x.device)
    rows = dy + offsets
    cols = torch.where(flip, dx + offsets.flip(0), dx + offsets)
    index = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(channels, device=x.device).view(1, -1, 1, 1)
    return padded[index, channel, rows.view(n, 1, 32, 1), cols.view(n, 1, 1, 32)]


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random 32×32 crops of 4-pixel zero-padded images and random horizontal flips.

    The draws come from the CPU generator (a seed gives the same batches on every device) and
    reach a CUDA device through pinned memory without blocking; the images never leave it.
    """
    draws = draw_augmentation(x.shape[0], generator)
    if x.device.type == "cuda":
        draws = draws.pin_memory()
    return apply_augmentation(x, draws.to(x.device, non_blocking=True))


def splits_on(splits: CifarSplits, device: torch.device, dtype: torch.dtype) -> CifarSplits:
    """The splits with images in `dtype` and everything on `device` (one upload)."""
    images = {"device": device, "dtype": dtype}
    return CifarSplits(
        splits.x_train.to(**images),
        splits.y_train.to(device),
        splits.x_val.to(**images),
        splits.y_val.to(device),
        splits.x_test.to(**images),
        splits.y_test.to(device),
    )
