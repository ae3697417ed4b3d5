"""What this worker can run: built-in and plugin tasks and optimizers, and import paths it
has probed, advertised with every lease request so the server hands it only those.

Plugins (entry points ``avatune.tasks`` and ``avatune.optimizers``) are loaded once at start;
one that fails to load is listed as unable, with the error, rather than stopping the worker.
Names the server asks about on an empty lease (`LeaseResponse.probe`) are imported once
each and remembered either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from optim.external import external_info
from optim.registry import OPTIMIZERS
from studies.plugin_names import PluginKind, plugin_names
from studies.protocol import MAX_CAPABILITIES, Capability, LeaseRequest, Unable
from workers.tasks import TASK_TYPES
from workers.tasks.external import external_task

log = logging.getLogger("avatune.worker")


@dataclass
class WorkerCapabilities:
    """The names this worker can run, and those it cannot with why."""

    tasks: set[str] = field(default_factory=lambda: set(TASK_TYPES))
    optimizers: set[str] = field(default_factory=lambda: set(OPTIMIZERS))
    unable: dict[Capability, str] = field(default_factory=dict)

    @classmethod
    def discover(cls) -> WorkerCapabilities:
        """Built-in names plus every plugin installed here that loads."""
        found = cls()
        kinds: tuple[PluginKind, ...] = ("task", "optimizer")
        found.probe([Capability(kind=k, name=n) for k in kinds for n in plugin_names(k)])
        return found

    def probe(self, wanted: list[Capability]) -> None:
        """See whether each of `wanted` imports as a task or optimizer; remember the answer."""
        for item in wanted:
            if self.knows(item):
                continue
            try:
                _load(item.kind, item.name)
            except Exception as error:  # a plugin's import may raise anything
                reason = f"{type(error).__name__}: {error}"[:500]
                self.unable[item] = reason
                log.warning("cannot run %s %s: %s", item.kind, item.name, reason)
            else:
                (self.tasks if item.kind == "task" else self.optimizers).add(item.name)
                log.info("can run %s %s", item.kind, item.name)

    def knows(self, item: Capability) -> bool:
        """Whether `item` was already found runnable or not."""
        names = self.tasks if item.kind == "task" else self.optimizers
        return item.name in names or item in self.unable

    def request(self, base: LeaseRequest) -> LeaseRequest:
        """`base` advertising these capabilities."""
        unable = [Unable(kind=c.kind, name=c.name, error=e) for c, e in self.unable.items()]
        return base.model_copy(
            update={
                "tasks": sorted(self.tasks)[:MAX_CAPABILITIES],
                "optimizers": sorted(self.optimizers)[:MAX_CAPABILITIES],
                "unable": unable[:MAX_CAPABILITIES],
            }
        )


def _load(kind: PluginKind, name: str) -> None:
    """Import `name` as a task or optimizer (raising why it cannot be one)."""
    if kind == "task":
        external_task(name)
    else:
        external_info(name, None)  # ε's argument is the study's to name: checked when built
