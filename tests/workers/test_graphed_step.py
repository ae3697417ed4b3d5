"""GraphedStep trains bitwise like the trainer's eager loop, eagerly and through a (fake) graph."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from optim import get_optimizer
from optim.capturable import capture_scope
from tests.workers.helpers import tiny_charlm
from workers.divergence import freeze_configs
from workers.graphed_step import GraphedStep
from workers.tasks import get_task
from workers.tasks.base import BatchedModel

C, STEPS, FREEZE_AT = 4, 9, 5
CPU = torch.device("cpu")


class FakeGraph:
    """A CPU stand-in for a CUDA graph: capture runs the step and undoes its effects on every
    tensor (a capture runs nothing); replay reruns it with no hyperparameter sync and the host
    step counters put back (a replay runs no Python), then rewrites the static output."""

    def __init__(self, model: BatchedModel, optimizer: Any) -> None:
        self.model, self.optimizer = model, optimizer
        self.captures = self.replays = 0

    def _tensors(self) -> list[Tensor]:
        params = self.model.parameters
        grads = [p.grad for p in params if p.grad is not None]
        state = [v for s in self.optimizer.state.values() for v in s.values()]
        groups = [
            v
            for g in self.optimizer.param_groups
            for v in [*g.get("static", {}).values(), g.get("gamma")]
            if isinstance(v, Tensor)
        ]
        return [*params, *grads, *state, *groups]

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        self.captures += 1
        self.fn = fn
        tensors = self._tensors()
        saved = [t.clone() for t in tensors]
        self.out = fn()
        with torch.no_grad():
            for t, s in zip(tensors, saved, strict=True):
                t.copy_(s)
        return self.out

    def replay(self) -> None:
        self.replays += 1
        groups = self.optimizer.param_groups
        host = [g["step"] for g in groups]
        with capture_scope():
            new = self.fn()
        for g, step in zip(groups, host, strict=True):
            g["step"] = step
        self.out.copy_(new)


class FailingGraph(FakeGraph):
    """A graph whose capture raises, as a host sync inside a CUDA capture does."""

    def capture(self, fn: Callable[[], Tensor]) -> Tensor:
        raise RuntimeError("operation not permitted when stream is capturing")


def _train(
    task_name: str,
    optimizer: str,
    graph: type[FakeGraph] | str | None,
    dtype: torch.dtype = torch.float64,
    steps: int = STEPS,
    batch: int = 8,
    manual: frozenset[int] = frozenset(),
) -> tuple[Tensor, list[Tensor], GraphedStep | None]:
    """The trainer's loop (lr schedule rebinding group["lr"], a config frozen mid-run), with
    each step run directly (graph None, and the steps in `manual`), or by a GraphedStep
    ("eager": no graph factory)."""
    task = tiny_charlm() if task_name == "charlm-lstm" else get_task(task_name)
    task.prepare(CPU, dtype)
    model = task.build(0, C, device=CPU, dtype=dtype)
    keys = task.batch_keys(0, steps, batch, CPU)
    base = torch.tensor([1e-3, 1e-2, 3e-2, 1e-1], dtype=dtype)
    eps = torch.tensor([1e-8, 1e-4, 1e-2, 1e-1], dtype=dtype)
    opt = get_optimizer(optimizer, model.parameters, lr=base, eps=eps, stacked=True)
    stepper = None
    if graph == "eager":
        stepper = GraphedStep(model, opt, warmup=2)
    elif graph is not None:
        stepper = GraphedStep(model, opt, warmup=2, graph_factory=lambda: graph(model, opt))
    weight = torch.ones(C, dtype=dtype)
    losses = torch.zeros(steps, C, dtype=dtype)
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = base * (1 / (1 + 0.1 * step))
        if stepper is None or step in manual:
            losses[step - 1] = model.train_step(keys[step - 1], weight)
            opt.step()
            model.after_step()
        else:
            losses[step - 1] = stepper(keys[step - 1], weight)
        if step == FREEZE_AT:
            dead = torch.tensor([3])
            weight.index_fill_(0, dead, 0.0)
            freeze_configs(model.parameters, opt, dead)
    return losses, [p.detach().clone() for p in model.parameters], stepper


def _assert_bitwise(a: tuple[Tensor, list[Tensor], Any], b: tuple[Tensor, list[Tensor], Any]):
    for x, y in zip([a[0], *a[1]], [b[0], *b[1]], strict=True):
        bits = torch.int64 if x.element_size() == 8 else torch.int32
        assert torch.equal(x.contiguous().view(bits), y.contiguous().view(bits))


CASES = [
    ("mnist1d-mlp", "avagrad"),
    ("mnist1d-mlp", "adam"),
    ("mnist1d-cnn", "avagradw"),
    ("charlm-lstm", "avagrad"),
    ("eq11", "sgd"),
    ("mnist1d-mlp", "adabelief"),
]


@pytest.mark.parametrize(("task", "optimizer"), CASES)
def test_fake_graph_replays_equal_eager_training(task: str, optimizer: str) -> None:
    eager = _train(task, optimizer, None)
    graphed = _train(task, optimizer, FakeGraph)
    stepper = graphed[2]
    assert stepper is not None and stepper.graphed and stepper.fallback is None
    graph = stepper._graph
    assert isinstance(graph, FakeGraph)
    assert (graph.captures, graph.replays) == (1, STEPS - 2)
    assert stepper.optimizer.param_groups[0]["step"] == STEPS
    assert stepper.optimizer.param_groups[0]["static"]["step"].item() == STEPS
    _assert_bitwise(graphed, eager)
    assert not torch.equal(eager[0][0], eager[0][-1])


def test_eager_steps_interleave_with_replays() -> None:
    """A step run outside the GraphedStep (e.g. with diagnostics) keeps training identical."""
    eager = _train("mnist1d-cnn", "avagrad", None)
    mixed = _train("mnist1d-cnn", "avagrad", FakeGraph, manual=frozenset({4, 7}))
    assert mixed[2] is not None and mixed[2].graphed
    _assert_bitwise(mixed, eager)


def test_eager_mode_on_cpu_equals_the_loop() -> None:
    eager = _train("mnist1d-mlp", "avagrad", None)
    stepped = _train("mnist1d-mlp", "avagrad", "eager")
    assert stepped[2] is not None and stepped[2].fallback == "not on CUDA"
    assert not stepped[2].graphed
    _assert_bitwise(stepped, eager)


def test_failed_capture_falls_back_to_eager(caplog: pytest.LogCaptureFixture) -> None:
    eager = _train("mnist1d-mlp", "avagrad", None)
    with caplog.at_level(logging.WARNING, logger="workers.graphed_step"):
        failed = _train("mnist1d-mlp", "avagrad", FailingGraph)
    stepper = failed[2]
    assert stepper is not None and not stepper.graphed
    assert stepper.fallback is not None and "capture failed" in stepper.fallback
    assert len([r for r in caplog.records if "not graphed" in r.message]) == 1
    _assert_bitwise(failed, eager)


def test_uncapturable_optimizer_stays_eager() -> None:
    task = get_task("mnist1d-mlp")
    task.prepare(CPU, torch.float64)
    model = task.build(0, 2, device=CPU, dtype=torch.float64)
    opt = get_optimizer("radam", model.parameters, lr=torch.full((2,), 1e-3), stacked=True)
    stepper = GraphedStep(model, opt, graph_factory=lambda: FakeGraph(model, opt))
    if stepper.fallback is None:  # RAdam may become capturable: then it must graph
        keys = task.batch_keys(0, 5, 8, CPU)
        for k in keys:
            stepper(k, torch.ones(2, dtype=torch.float64))
        assert stepper.graphed
    else:
        assert "no capturable step" in stepper.fallback


def test_warmup_must_leave_step_one_eager() -> None:
    task = get_task("eq11")
    model = task.build(0, 2, device=CPU, dtype=torch.float64)
    opt = get_optimizer("sgd", model.parameters, lr=torch.full((2,), 0.1), stacked=True)
    with pytest.raises(ValueError, match="warmup"):
        GraphedStep(model, opt, warmup=0)
