"""What a proxy task is: data, a model over C stacked configurations, loss and metrics.

A task builds a `BatchedModel` holding the parameters of C configurations that share one
seed (so one initialisation and one minibatch order). The trainer owns the loop: it asks the
model for per-config losses and gradients, steps a stacked optimizer over
`BatchedModel.parameters`, and finally asks for per-config metrics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor

from optim.diagnostics import Segment, whole_tensors


class BatchedModel(ABC):
    """Parameters of C configurations of one task, with their forward and backward passes."""

    #: True: `parameters` carry a leading config dimension C (a stacked optimizer steps them);
    #: False: a single configuration's plain parameters (the one-by-one fallback).
    stacked: ClassVar[bool] = True

    def __init__(self, configs: int) -> None:
        self.configs = configs

    @property
    @abstractmethod
    def parameters(self) -> list[Tensor]:
        """The tensors the optimizer steps; `train_step` leaves their gradients in `.grad`."""

    @abstractmethod
    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Set `.grad` of every parameter for minibatch `keys`; return the per-config loss [C].

        `weight` [C] scales each configuration's loss (0 freezes a diverged configuration).
        """

    @abstractmethod
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric), each of shape [C]."""

    def after_step(self) -> None:
        """Hook run after every optimizer step (eq11 projects onto its interval here)."""
        return None

    def parameter_names(self) -> list[str]:
        """A name per tensor of `parameters`, in order (diagnostics label by them): p0, p1, …"""
        return [f"p{i}" for i in range(len(self.parameters))]

    def segments(self) -> list[Segment]:
        """Named runs of one configuration's parameter elements, for the diagnostics: each
        tensor whole, named by `parameter_names` (a model with one flat buffer splits it)."""
        per_config = [p[0] if self.stacked else p for p in self.parameters]
        return whole_tensors([p.numel() for p in per_config], self.parameter_names())

    def lr_factor(self, step: int) -> float:
        """Multiplier of the learning rate at 1-based `step` (a schedule); 1 by default."""
        return 1.0


class AutogradModel(BatchedModel):
    """A batched model whose gradients come from autograd on a stacked per-config loss."""

    #: The reported (curve) loss is the differentiated loss times this (e.g. nats → bits).
    report_scale: ClassVar[float] = 1.0

    @abstractmethod
    def loss(self, keys: Tensor) -> Tensor:
        """Per-config training loss [C] on minibatch `keys`, differentiable in the parameters."""

    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Backward of Σ_c weight_c·loss_c: configurations never mix, so each gets its own grad."""
        params = self.parameters
        with torch.enable_grad():
            loss = self.loss(keys)
            grads = torch.autograd.grad((loss * weight).sum(), params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        return loss.detach() * self.report_scale


class Task(ABC):
    """A proxy task: its data, model, objective and default fidelity."""

    name: ClassVar[str]
    description: ClassVar[str]
    default_steps: ClassVar[int]
    default_batch_size: ClassVar[int]
    #: The objective of a diverged run (e.g. 90.0: the error of guessing among 10 classes).
    chance: ClassVar[float]
    objective_name: ClassVar[str]
    test_metric_name: ClassVar[str]
    #: Whether many configurations train as one stacked model; if not, one at a time.
    batchable: ClassVar[bool] = True
    #: Whether jobs should run on one thread per core (False for models so small that a
    #: step is all Python overhead: threads would only contend for the GIL).
    parallel_jobs: ClassVar[bool] = True
    #: Configurations per job on a CPU when this task trains better in other job sizes than
    #: the trainer's default (its working set per job); None: `trainer.CPU_MAX_BATCH`. A
    #: task may set it per instance (by model size).
    cpu_max_batch: int | None = None

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load or generate the data once, before jobs start on worker threads."""
        return None

    @abstractmethod
    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> BatchedModel:
        """C = `configs` copies of the model initialised from `seed` (same seed, same init)."""

    @abstractmethod
    def batch_keys(self, seed: int, steps: int, batch_size: int, device: torch.device) -> Tensor:
        """What each step trains on, [steps, ...] (e.g. example indices); determined by `seed`."""

    def optimizer_defaults(self, optimizer: str) -> dict[str, Any]:
        """Optimizer settings this task needs unless the caller overrides them."""
        return {}

    def step_flops(self, batch_size: int) -> float:
        """Nominal matrix-product FLOPs of one configuration's training step (forward, weight
        and input gradients), for throughput benchmarks; NaN where a task does not say."""
        return float("nan")


def init_generator(seed: int) -> torch.Generator:
    """The CPU generator that draws a seed's initial weights."""
    return torch.Generator().manual_seed(2 * seed)


def data_generator(seed: int) -> torch.Generator:
    """The CPU generator that draws a seed's minibatch order (independent of the init stream)."""
    return torch.Generator().manual_seed(2 * seed + 1)


def epoch_indices(examples: int, steps: int, batch_size: int, seed: int) -> Tensor:
    """Minibatch indices [steps, batch_size]: fresh permutations of the examples, back to back."""
    generator = data_generator(seed)
    needed = steps * batch_size
    epochs = -(-needed // examples)
    order = torch.cat([torch.randperm(examples, generator=generator) for _ in range(epochs)])
    return order[:needed].view(steps, batch_size)


def stacked_leaves(
    init: list[Tensor], configs: int, device: torch.device, dtype: torch.dtype
) -> list[Tensor]:
    """`configs` copies of each initial tensor, stacked on a leading config dimension, as
    leaves that autograd differentiates."""
    return [
        p.to(device=device, dtype=dtype)
        .unsqueeze(0)
        .repeat(configs, *[1] * p.dim())
        .requires_grad_()
        for p in init
    ]


def uniform_init(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> Tensor:
    """U(−1/√fan_in, 1/√fan_in) in float64: torch's default for Linear/Conv weights and biases."""
    bound = 1.0 / fan_in**0.5
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
