"""The proxy tasks a worker can train, by name."""

from __future__ import annotations

from workers.tasks.base import AutogradModel, BatchedModel, Task
from workers.tasks.charlm import CharLSTM
from workers.tasks.cifar import CifarWRN
from workers.tasks.cnn import MnistCNN
from workers.tasks.eq11 import Eq11
from workers.tasks.mlp import MnistMLP

TASKS: dict[str, Task] = {
    task.name: task for task in (MnistMLP(), MnistCNN(), CharLSTM(), Eq11(), CifarWRN())
}
DEFAULT_TASK = "mnist1d-mlp"


def get_task(name: str) -> Task:
    """The task registered as `name`; ValueError naming the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        known = ", ".join(TASKS)
        raise ValueError(f"unknown task {name!r}; choose one of: {known}") from None


__all__ = ["DEFAULT_TASK", "TASKS", "AutogradModel", "BatchedModel", "Task", "get_task"]
