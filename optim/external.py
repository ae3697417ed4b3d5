"""Optimizers from anywhere: an import path ``package.module:Class`` naming any
`torch.optim.Optimizer` subclass, or a name a package registers in the entry-point group
``avatune.optimizers``.

An entry point names either an `OptimizerInfo` (the package's own plain and stacked rules)
or an `Optimizer` subclass. A class runs plainly for one configuration, and through
`PerConfigOptimizer` for stacked ones: one param group per configuration, each with its own
α and ε, set under the constructor argument `eps_arg` that is ε (None: it has none).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from torch import Tensor
from torch.optim import Optimizer

from optim.fallback import PerConfigOptimizer

if TYPE_CHECKING:
    from optim.registry import OptimizerInfo

GROUP = "avatune.optimizers"
#: α of an external optimizer whose constructor has no default for `lr`.
FALLBACK_LR = 1e-3


def import_object(path: str) -> Any:
    """The object an import path ``package.module:Attribute.Sub`` names; ImportError (or
    AttributeError) saying which part is missing."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"malformed import path {path!r}: write package.module:Class")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AttributeError(f"{module_name} has no attribute {attribute!r}") from None
    return target


def registered(name: str) -> Any | None:
    """What the entry point `name` of ``avatune.optimizers`` names, None when no package
    registers it (loading it imports the package)."""
    for point in entry_points(group=GROUP, name=name):
        return point.load()
    return None


@cache
def external_info(name: str, eps_arg: str | None = "eps") -> OptimizerInfo:
    """The registry entry of a plugin name or import path; ValueError when it names no
    optimizer (ImportError or AttributeError when it cannot be imported)."""
    from optim.registry import OptimizerInfo

    target = import_object(name) if ":" in name else registered(name)
    if target is None:
        raise ValueError(f"unknown optimizer {name!r}: no package registers it in {GROUP}")
    if isinstance(target, OptimizerInfo):
        return target
    if not (inspect.isclass(target) and issubclass(target, Optimizer)):
        raise ValueError(f"{name} is not a torch.optim.Optimizer subclass (got {target!r})")
    return class_info(name, target, eps_arg)


def class_info(name: str, cls: type[Optimizer], eps_arg: str | None) -> OptimizerInfo:
    """An `OptimizerInfo` for an `Optimizer` subclass: plain, and the per-config fallback."""
    from optim.registry import OptimizerInfo

    defaults = _defaults(cls)
    if eps_arg is not None and eps_arg not in defaults and not _takes_kwargs(cls):
        known = ", ".join(k for k in defaults if k != "params")
        raise ValueError(
            f"{name} has no argument {eps_arg!r} (its arguments: {known}); set eps_arg to "
            "the one that is ε, or to null when it has none"
        )
    lr = defaults.get("lr")
    eps = defaults.get(eps_arg) if eps_arg else None
    return OptimizerInfo(
        name=name,
        description=f"{cls.__module__}.{cls.__qualname__} (through the per-config fallback)",
        uses_eps=eps_arg is not None,
        default_lr=float(lr) if isinstance(lr, int | float) else FALLBACK_LR,
        default_eps=float(eps) if isinstance(eps, int | float) else 0.0,
        plain=_plain(cls, eps_arg),
        stacked=_stacked(cls, eps_arg),
    )


def _defaults(cls: type) -> dict[str, Any]:
    """The constructor's arguments and their defaults (None where there is none)."""
    params = inspect.signature(cls).parameters.values()
    return {
        p.name: None if p.default is inspect.Parameter.empty else p.default
        for p in params
        if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }


def _takes_kwargs(cls: type) -> bool:
    params = inspect.signature(cls).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _hyper(lr: Any, eps: Any, eps_arg: str | None) -> dict[str, Any]:
    return {"lr": lr} if eps_arg is None or eps is None else {"lr": lr, eps_arg: eps}


def _plain(cls: type[Optimizer], eps_arg: str | None) -> Callable[..., Optimizer]:
    def build(
        params: Any, lr: float, eps: float | None, fused: bool = False, **settings: Any
    ) -> Optimizer:
        if fused:  # only when asked for: an arbitrary optimizer may not take `fused`
            settings["fused"] = True
        return cls(params, **_hyper(lr, eps, eps_arg), **settings)

    return build


def _stacked(cls: type[Optimizer], eps_arg: str | None) -> Callable[..., PerConfigOptimizer]:
    def build(
        params: Any,
        lr: Tensor | float,
        eps: Tensor | float | None,
        fused: bool = False,
        stacked: bool = True,
        **settings: Any,
    ) -> PerConfigOptimizer:
        def make(groups: list[dict[str, Any]]) -> Optimizer:
            inner = cls(groups, **_hyper(1.0, 1.0, eps_arg), **settings)
            if eps_arg is not None and eps_arg not in inner.defaults:
                raise ValueError(
                    f"{cls.__qualname__} keeps no per-group {eps_arg!r}, so ε cannot differ "
                    "between configurations; set eps_arg to its ε setting, or null"
                )
            return inner

        return PerConfigOptimizer(params, make, _hyper(lr, eps, eps_arg))

    return build
