"""Stable optimizer names → constructors, for plain and stacked (batched) parameters; any
other optimizer by import path or plugin name (`optim.external`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from optim import avagrad_cpu, native
from optim._foreach import HParam
from optim.adabelief import AdaBelief
from optim.adam import StackedAdam
from optim.avagrad import AvaGrad, AvaGradW
from optim.delayed_adam import DelayedAdam
from optim.external import external_info
from optim.fallback import PerConfigOptimizer
from optim.radam import RAdam
from optim.sgd import StackedSGD


@dataclass(frozen=True)
class OptimizerInfo:
    """What the registry knows about one optimizer name."""

    name: str
    description: str
    uses_eps: bool
    default_lr: float
    default_eps: float
    plain: Callable[..., Any]
    stacked: Callable[..., Any] | None = None
    #: What ``fused=True`` runs on CPU when it is a one-pass kernel (not torch.compile):
    #: "torch" (always one pass: Adam's C loop `adam_cpu.c` when it built, else torch's
    #: fused kernel per config) or a C source built by `optim.native` (else torch.compile).
    cpu_kernel: str | None = None


def _torch(cls: type, **fixed: Any) -> Callable[..., Any]:
    def build(
        params: Any, lr: float, eps: float | None, fused: bool = False, **settings: Any
    ) -> Any:
        if eps is not None:
            settings["eps"] = eps
        if fused:
            settings["fused"] = True
        return cls(params, lr=lr, **fixed, **settings)

    return build


def _ours(cls: type, **fixed: Any) -> Callable[..., Any]:
    def build(params: Any, lr: HParam, eps: HParam | None, **settings: Any) -> Any:
        if eps is not None:
            settings["eps"] = eps
        return cls(params, lr=lr, **fixed, **settings)

    return build


def _sgd(params: Any, lr: HParam, eps: HParam | None, **settings: Any) -> Any:
    settings.setdefault("momentum", 0.9)
    return StackedSGD(params, lr=lr, **settings)


def _torch_sgd(
    params: Any, lr: float, eps: float | None, fused: bool = False, **settings: Any
) -> Any:
    settings.setdefault("momentum", 0.9)
    return torch.optim.SGD(params, lr=lr, fused=fused or None, **settings)


OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info
    for info in [
        OptimizerInfo("sgd", "SGD, momentum 0.9 (ε is ignored)", False, 0.1, 0.0, _torch_sgd, _sgd),
        OptimizerInfo(
            "adam",
            "Adam (torch.optim)",
            True,
            1e-3,
            1e-8,
            _torch(torch.optim.Adam),
            _ours(StackedAdam),
            cpu_kernel="torch",
        ),
        OptimizerInfo(
            "adamw",
            "AdamW, decoupled decay (torch.optim)",
            True,
            1e-3,
            1e-8,
            _torch(torch.optim.AdamW, weight_decay=0.0),
            _ours(StackedAdam, decoupled=True),
            cpu_kernel="torch",
        ),
        OptimizerInfo(
            "amsgrad",
            "Adam with AMSGrad's max (torch.optim)",
            True,
            1e-3,
            1e-8,
            _torch(torch.optim.Adam, amsgrad=True),
            _ours(StackedAdam, amsgrad=True),
            cpu_kernel="torch",
        ),
        OptimizerInfo(
            "radam",
            "RAdam (torch.optim)",
            True,
            1e-3,
            1e-8,
            _torch(torch.optim.RAdam),
            _ours(RAdam),
        ),
        OptimizerInfo(
            "avagrad",
            "AvaGrad, official code",
            True,
            0.1,
            0.1,
            _ours(AvaGrad),
            _ours(AvaGrad),
            cpu_kernel=avagrad_cpu.SOURCE,
        ),
        OptimizerInfo(
            "avagradw",
            "AvaGrad with decoupled weight decay",
            True,
            0.1,
            0.1,
            _ours(AvaGradW),
            _ours(AvaGradW),
            cpu_kernel=avagrad_cpu.SOURCE,
        ),
        OptimizerInfo(
            "delayed_adam",
            "Delayed Adam (paper's Algorithm 1)",
            True,
            1e-3,
            1e-8,
            _ours(DelayedAdam),
            _ours(DelayedAdam),
            cpu_kernel=avagrad_cpu.SOURCE,
        ),
        OptimizerInfo(
            "adabelief",
            "AdaBelief (adabelief-pytorch 0.2 semantics)",
            True,
            1e-3,
            1e-16,
            _ours(AdaBelief),
            _ours(AdaBelief),
        ),
    ]
}


def uses_eps(name: str, eps_arg: str | None = "eps") -> bool:
    """Whether the optimizer has an ε hyperparameter (a tuning axis) at all."""
    return optimizer_info(name, eps_arg).uses_eps


def one_pass_on_cpu(name: str, settings: dict[str, Any], eps_arg: str | None = "eps") -> bool:
    """Whether ``fused=True`` on CPU runs a one-pass kernel (cheap to turn on: no compiling)."""
    kernel = optimizer_info(name, eps_arg).cpu_kernel
    if kernel is None or settings.get("variant", "official") != "official":
        return False
    return kernel == "torch" or native.load(kernel) is not None


def optimizer_info(name: str, eps_arg: str | None = "eps") -> OptimizerInfo:
    """The entry of a built-in name, a plugin's name (entry point ``avatune.optimizers``) or
    an import path ``package.module:Class`` (whose ε is the argument `eps_arg`); ValueError
    naming the built-in ones when it names nothing."""
    if name in OPTIMIZERS:
        return OPTIMIZERS[name]
    try:
        return external_info(name, eps_arg)
    except ValueError as error:
        if ":" in name:
            raise
        known = ", ".join(OPTIMIZERS)
        raise ValueError(f"{error}; built-in optimizers: {known}") from None


def get_optimizer(
    name: str,
    params: Any,
    lr: HParam | None = None,
    eps: HParam | None = None,
    *,
    stacked: bool = False,
    fused: bool = False,
    eps_arg: str | None = "eps",
    **settings: Any,
) -> Any:
    """Build optimizer `name` (`optimizer_info`) over `params`.

    With ``stacked=True`` the parameters carry a leading config dimension C and `lr`,
    `eps` (and `weight_decay`) may be tensors of shape [C]. ε is ignored by optimizers
    that have none (sgd, or `eps_arg` None).
    """
    info = optimizer_info(name, eps_arg)
    lr = info.default_lr if lr is None else lr
    eps = eps if info.uses_eps else None
    if not stacked:
        if isinstance(lr, Tensor) or isinstance(eps, Tensor):
            raise ValueError("per-config (tensor) lr or eps needs stacked=True")
        return info.plain(params, lr, eps, fused=fused, **settings)
    if info.stacked is None:  # a plugin's entry without a stacked rule: one group per config
        hyper: dict[str, Any] = {"lr": lr} if eps is None else {"lr": lr, "eps": eps}
        unit_eps = None if eps is None else 1.0
        return PerConfigOptimizer(
            params, lambda groups: info.plain(groups, 1.0, unit_eps, **settings), hyper
        )
    return info.stacked(params, lr, eps, fused=fused, stacked=True, **settings)
