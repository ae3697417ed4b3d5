"""Tasks from anywhere: a name a package registers in the entry-point group
``avatune.tasks``, or an import path ``package.module:Class``.

Either names a `Task` subclass, or a function returning a `Task`; a spec's ``task.config``
options are its keyword arguments (checked against its signature, so a misspelt option is
a clear error rather than a TypeError deep in a job).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from optim.external import import_object
from studies.plugin_names import TASK_GROUP, is_import_path
from studies.spec_errors import did_you_mean
from workers.tasks.base import Task


def external_task(name: str) -> Callable[..., Task]:
    """What builds the plugin task or import path `name`; ValueError when it names no task
    (ImportError or AttributeError when it cannot be imported)."""
    if is_import_path(name):
        target = import_object(name)
    else:
        points = entry_points(group=TASK_GROUP, name=name)
        if not points:
            from workers.tasks import TASK_TYPES

            hint = did_you_mean(name, tuple(TASK_TYPES))
            raise ValueError(
                f"unknown task {name!r}; {hint + ' ' if hint else ''}built-in tasks: "
                f"{', '.join(TASK_TYPES)}; no installed package registers it in {TASK_GROUP}"
            )
        target = next(iter(points)).load()
    if inspect.isclass(target) and issubclass(target, Task):
        return target
    if inspect.isclass(target) or not callable(target):
        raise ValueError(f"{name} is neither a Task subclass nor a function returning a Task")
    return _checked(name, target)


def _checked(name: str, factory: Callable[..., Any]) -> Callable[..., Task]:
    def build(**options: Any) -> Task:
        task = factory(**options)
        if not isinstance(task, Task):
            raise ValueError(f"{name} returned {type(task).__name__}, not a Task")
        return task

    build.__signature__ = inspect.signature(factory)  # type: ignore[attr-defined]
    return build


def external_options(
    name: str, build: Callable[..., Task], config: Mapping[str, Any]
) -> dict[str, Any]:
    """`config` when its keys are keyword arguments of `build`; ValueError naming them."""
    params = inspect.signature(build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(config)
    known = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in config:
        if key not in known:
            hint = did_you_mean(key, known)
            listed = ", ".join(known) if known else "none"
            raise ValueError(
                f"unknown option {key!r} of task {name}; {hint + ' ' if hint else ''}"
                f"its options: {listed}"
            )
    return dict(config)
