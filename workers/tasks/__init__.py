"""The proxy tasks a worker can train, by name, built with a spec's task options."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from studies.specs import task_options
from workers.tasks.base import AutogradModel, BatchedModel, Task
from workers.tasks.charlm import CharLSTM
from workers.tasks.cifar import CifarWRN
from workers.tasks.cnn import MnistCNN
from workers.tasks.eq11 import Eq11
from workers.tasks.external import external_options, external_task
from workers.tasks.mlp import MnistMLP
from workers.tasks.resnet import MnistResNet

#: Each task's class by name; `task.config` options are its constructor's keywords.
TASK_TYPES: dict[str, type[Task]] = {
    cls.name: cls for cls in (MnistMLP, MnistCNN, MnistResNet, CharLSTM, Eq11, CifarWRN)
}
DEFAULT_TASK = "mnist1d-mlp"

_BUILT: dict[tuple[str, tuple[tuple[str, Any], ...]], Task] = {}
_LOCK = threading.Lock()


def get_task(name: str, config: Mapping[str, Any] | None = None) -> Task:
    """The task `name` built with options `config`, one shared instance per (name, options)
    so its data loads once. `name` is a built-in task (options: `studies.specs.TASK_OPTIONS`),
    a plugin's (entry point ``avatune.tasks``) or an import path ``package.module:Class``
    (`workers.tasks.external`); ValueError on an unknown name or option, naming the known ones."""
    cls = TASK_TYPES.get(name)
    if cls is not None:
        options = task_options(name, config or {})
        build: Callable[..., Task] = cls
    else:
        build = external_task(name)
        options = external_options(name, build, config or {})
    key = (name, tuple(sorted(options.items())))
    with _LOCK:
        if key not in _BUILT:
            _BUILT[key] = build(**options)
        return _BUILT[key]


#: Every task with its default options.
TASKS: dict[str, Task] = {name: get_task(name) for name in TASK_TYPES}

__all__ = [
    "DEFAULT_TASK",
    "TASKS",
    "TASK_TYPES",
    "AutogradModel",
    "BatchedModel",
    "Task",
    "get_task",
]
