"""What every MNIST-1D task shares: data, minibatch order, chance level and metric names."""

from __future__ import annotations

import torch
from torch import Tensor

from workers.tasks.base import Task, epoch_indices
from workers.tasks.mnist1d_data import mnist1d_on, mnist1d_splits


class Mnist1DTask(Task):
    """A classifier on MNIST-1D (4000/4000/4000); objective: validation error %."""

    default_steps = 1000
    default_batch_size = 100
    chance = 90.0
    objective_name = "validation error %"
    test_metric_name = "test error %"

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load the data once before jobs start."""
        mnist1d_on(device, dtype)

    def batch_keys(self, seed: int, steps: int, batch_size: int, device: torch.device) -> Tensor:
        """What each step trains on, drawn from `seed`."""
        examples = mnist1d_splits().x_train.shape[0]
        return epoch_indices(examples, steps, batch_size, seed).to(device)
