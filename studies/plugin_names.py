"""How a spec names a task or optimizer: a built-in name, a plugin's entry-point name, or an
import path ``package.module:Attribute``.

The server checks the form only and never imports what a path names: a worker that can
import it advertises it when it leases (`studies.protocol.LeaseRequest`). Entry-point
names are read from installed package metadata, which imports nothing either.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import entry_points
from typing import Literal

#: The entry-point groups plugins register in.
TASK_GROUP = "avatune.tasks"
OPTIMIZER_GROUP = "avatune.optimizers"
PluginKind = Literal["task", "optimizer"]
GROUPS: dict[PluginKind, str] = {"task": TASK_GROUP, "optimizer": OPTIMIZER_GROUP}

#: Longest name a study may carry (its database column).
MAX_NAME = 64
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
IMPORT_PATH = re.compile(rf"^{_DOTTED}:{_DOTTED}$")
#: A plain (registry or entry-point) name.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_import_path(name: str) -> bool:
    """Whether `name` has the form of an import path (it has a colon)."""
    return ":" in name


def check_import_path(name: str) -> str:
    """`name` when it is a well-formed ``package.module:Attribute``; ValueError with the fix."""
    if not IMPORT_PATH.match(name):
        raise ValueError(
            f"malformed import path {name!r}: write package.module:Class, e.g. torch.optim:NAdam"
        )
    return name


@cache
def plugin_names(kind: PluginKind) -> tuple[str, ...]:
    """Names registered in this environment's entry-point group for `kind` (nothing imported)."""
    return tuple(sorted({ep.name for ep in entry_points(group=GROUPS[kind])}))
