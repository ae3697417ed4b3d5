"""`GraphedStep`: one training step (forward, backward, optimizer, hook) as one CUDA graph replay.

A batched step is hundreds to thousands of small kernels whose launches dominate on a GPU.
After a few eager steps (the real first steps, which also create the optimizer's state),
the step is captured once with static inputs and then replayed, a handful of launches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from optim.capturable import capture_scope, make_capturable
from workers.tasks.base import BatchedModel

log = logging.getLogger(__name__)

#: Eager steps before the capture: they create lazy state and warm up cuBLAS and allocators.
WARMUP_STEPS = 3


class Graph(Protocol):
    """What `GraphedStep` needs from a graph: record a function once, replay it."""

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        """Record `fn` (running none of its work); return its static output."""
        ...

    def replay(self) -> None:
        """Run the recorded work again, rewriting the static output."""
        ...


class CudaGraph:
    """`Graph` over torch.cuda.CUDAGraph (the captured work reads and writes fixed addresses)."""

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        """Capture `fn` on torch's capture stream (errors in other threads do not abort it)."""
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            return fn()

    def replay(self) -> None:
        """Launch the captured graph on the current stream."""
        self.graph.replay()


class GraphedStep:
    """Runs ``model.train_step(keys, weight); optimizer.step(); model.after_step()``.

    On CUDA, for a stacked model with an optimizer that `make_capturable` accepts, the first
    `warmup` steps run eagerly (on a side stream, as torch's capture recipe asks) and the
    next is captured and replayed from then on; otherwise, or if the capture fails (logged
    once, `fallback` says why), every step is eager. The returned loss [C] of a replayed
    step is a static tensor that the next step overwrites: copy it. `weight` may be
    changed in place between steps (divergence freezing); so may parameters and state.
    Eager steps run outside this object (e.g. diagnostics steps) may be interleaved.
    """

    def __init__(
        self,
        model: BatchedModel,
        optimizer: Any,
        *,
        warmup: int = WARMUP_STEPS,
        graph_factory: Callable[[], Graph] | None = None,
    ) -> None:
        if warmup < 1:
            raise ValueError(
                f"warmup must be >= 1 (the captured step must not be step 1), got {warmup}"
            )
        self.model = model
        self.optimizer = optimizer
        self.warmup = warmup
        on_cuda = all(p.device.type == "cuda" for p in model.parameters)
        self.graph_factory = graph_factory or (CudaGraph if on_cuda else None)
        self.fallback: str | None = None
        self.steps = 0
        self._graph: Graph | None = None
        self._keys: Tensor | None = None
        self._weight: Tensor | None = None
        self._loss: Tensor | None = None
        self._host_steps: list[tuple[dict[str, Any], int]] = []
        self._stream: torch.cuda.Stream | None = None
        if self.graph_factory is None:
            self.fallback = "not on CUDA"
        elif not model.stacked:
            self.fallback = "the model is not stacked"
        elif not make_capturable(optimizer):
            self.fallback = f"{type(optimizer).__name__} has no capturable step"
        if on_cuda and self.fallback is not None:
            log.info("training step not graphed, running eagerly (%s)", self.fallback)

    @property
    def graphed(self) -> bool:
        """Whether steps are replays of a captured graph (from step warmup + 2 on)."""
        return self._graph is not None

    def __call__(self, keys: Tensor, weight: Tensor) -> Tensor:
        """One training step on minibatch `keys`; returns the per-config loss [C]."""
        self.steps += 1
        if self._graph is None and self.fallback is None and self.steps > self.warmup:
            self._capture(keys, weight)
        if self._graph is None:
            return self._eager(keys, weight, side_stream=self.fallback is None)
        return self._replay(keys, weight)

    def _run(self, keys: Tensor, weight: Tensor) -> Tensor:
        loss = self.model.train_step(keys, weight)
        self.optimizer.step()
        self.model.after_step()
        return loss

    def _eager(self, keys: Tensor, weight: Tensor, side_stream: bool) -> Tensor:
        if not (side_stream and keys.device.type == "cuda"):
            return self._run(keys, weight)
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=keys.device)
        stream = self._stream
        stream.wait_stream(torch.cuda.current_stream(keys.device))
        with torch.cuda.stream(stream):
            loss = self._run(keys, weight)
        torch.cuda.current_stream(keys.device).wait_stream(stream)
        return loss

    def _capture(self, keys: Tensor, weight: Tensor) -> None:
        """Record one step over static copies of its inputs; the host step counters it
        advanced are put back (a replay performs the step) and advanced per replay."""
        groups = self.optimizer.param_groups
        before = [group["step"] for group in groups]
        self._keys, self._weight = keys.clone(), weight
        self.optimizer.sync_hyperparameters()
        graph = self.graph_factory()
        try:
            with capture_scope():
                loss = graph.capture(lambda: self._run(self._keys, self._weight))
        except Exception as error:
            self.fallback = f"capture failed: {type(error).__name__}: {error}"
            log.warning("training step not graphed, running eagerly (%s)", self.fallback)
            return
        finally:
            after = [group["step"] for group in groups]
            for group, step in zip(groups, before, strict=True):
                group["step"] = step
        self._host_steps = [
            (group, a - b) for group, a, b in zip(groups, after, before, strict=True) if a != b
        ]
        self._graph, self._loss = graph, loss

    def _replay(self, keys: Tensor, weight: Tensor) -> Tensor:
        assert self._graph is not None and self._keys is not None and self._loss is not None
        self._keys.copy_(keys)
        if weight is not self._weight:
            self._weight.copy_(weight)
        self.optimizer.sync_hyperparameters()
        self._graph.replay()
        for group, advance in self._host_steps:
            group["step"] += advance
        return self._loss
