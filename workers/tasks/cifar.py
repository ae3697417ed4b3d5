"""`cifar10-wrn`: a Wide ResNet (default WRN-16-4) on local CIFAR-10, for GPU workers.

Not batched: BatchNorm's batch statistics and running averages make a stacked model
more than a reshaping of C independent ones, so trials train one at a time (one plain
optimizer over one nn.Module). Depth and width come from the constructor, else from
`AVATUNE_WRN_DEPTH` / `AVATUNE_WRN_WIDTH`. The data is uploaded to the training device once
and augmented there, so a step never waits on the host.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from workers.tasks.base import BatchedModel, Task, data_generator, epoch_indices, init_generator
from workers.tasks.cifar_data import CifarSplits, augment, cifar_splits, data_folder, splits_on
from workers.tasks.wrn import WideResNet

EVAL_BATCH = 500


def _error_percent(model: torch.nn.Module, x: Tensor, y: Tensor) -> float:
    """Error % of `model` on (x, y), counted on their device and read back once."""
    wrong = torch.zeros((), dtype=torch.int64, device=x.device)
    finite = torch.ones((), dtype=torch.bool, device=x.device)
    for start in range(0, x.shape[0], EVAL_BATCH):
        logits = model(x[start : start + EVAL_BATCH])
        finite &= torch.isfinite(logits).all()
        wrong += (logits.argmax(1) != y[start : start + EVAL_BATCH]).sum()
    return 100.0 * int(wrong) / x.shape[0] if bool(finite) else float("nan")


class WRNModel(BatchedModel):
    """One Wide ResNet (C = 1): the one-by-one fallback; `data` already on the device."""

    stacked = False

    def __init__(
        self,
        data: CifarSplits,
        seed: int,
        depth: int,
        width: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        super().__init__(1)
        self.data = data
        self.device, self.dtype = device, dtype
        network = WideResNet(depth, width, generator=init_generator(seed))
        self.model = network.to(device=device, dtype=dtype)
        self.augmentation = data_generator(seed)

    @property
    def parameters(self) -> list[Tensor]:
        """The network's parameters (not stacked: one configuration)."""
        return list(self.model.parameters())

    def parameter_names(self) -> list[str]:
        """The network's parameter names (e.g. blocks.0.conv1.weight)."""
        return [name for name, _ in self.model.named_parameters()]

    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Loss [1] of one augmented minibatch; gradients left in `.grad`."""
        self.model.train()
        keys = keys.to(self.device, non_blocking=True)
        x = augment(self.data.x_train[keys], self.augmentation)
        y = self.data.y_train[keys]
        for p in self.model.parameters():
            p.grad = None
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        return loss.detach().view(1)

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Validation and test error % (eval mode: BatchNorm running statistics)."""
        self.model.eval()
        d = self.data
        val = _error_percent(self.model, d.x_val, d.y_val)
        test = _error_percent(self.model, d.x_test, d.y_test)
        return torch.tensor([val], dtype=torch.float64), torch.tensor([test], dtype=torch.float64)


class CifarWRN(Task):
    """CIFAR-10 (local pickle batches), WRN-16-4; objective: validation error %."""

    name = "cifar10-wrn"
    description = "CIFAR-10 from AVATUNE_DATA_DIR, Wide ResNet (WRN-16-4), one trial at a time"
    default_steps = 10_000
    default_batch_size = 128
    chance = 90.0
    objective_name = "validation error %"
    test_metric_name = "test error %"
    batchable = False

    def __init__(
        self, depth: int | None = None, width: int | None = None, data_dir: str | Path | None = None
    ) -> None:
        self._depth, self._width, self.data_dir = depth, width, data_dir
        self._uploaded: dict[tuple[str, torch.dtype], CifarSplits] = {}

    @property
    def depth(self) -> int:
        """WRN depth (6n + 4)."""
        return self._depth or int(os.environ.get("AVATUNE_WRN_DEPTH", 16))

    @property
    def width(self) -> int:
        """WRN widening factor k."""
        return self._width or int(os.environ.get("AVATUNE_WRN_WIDTH", 4))

    def splits(self) -> CifarSplits:
        """The dataset (read once per folder)."""
        return cifar_splits(data_folder(self.data_dir))

    def splits_on(self, device: torch.device, dtype: torch.dtype) -> CifarSplits:
        """The dataset on `device` in `dtype`, uploaded once per (device, dtype)."""
        key = (str(device), dtype)
        if key not in self._uploaded:
            self._uploaded[key] = splits_on(self.splits(), device, dtype)
        return self._uploaded[key]

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load and upload the data once before jobs start."""
        self.splits_on(device, dtype)

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> WRNModel:
        """One Wide ResNet initialised from `seed` (configs must be 1)."""
        if configs != 1:
            raise ValueError("cifar10-wrn trains one configuration at a time")
        data = self.splits_on(device, dtype)
        return WRNModel(data, seed, self.depth, self.width, device, dtype)

    def batch_keys(self, seed: int, steps: int, batch_size: int, device: torch.device) -> Tensor:
        """What each step trains on, drawn from `seed`, on `device` (one upload)."""
        examples = self.splits().x_train.shape[0]
        return epoch_indices(examples, steps, min(batch_size, examples), seed).to(device)
