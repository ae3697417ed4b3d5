"""What each task's numbers mean, for axis and colour-bar labels: the objective (a trial's
value) and the training loss of its learning curve, with units, the default steps, and how
its suboptimality targets δ read (absolute in the gap unit, or relative: % of f*).

Pure data mirrored from `workers.tasks` (tests/workers/test_objectives.py keeps the two in
step), so the server labels charts without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from studies.deltas import DeltaKind, delta_unit

#: Points a worker's learning curve holds at most (`workers.curves.MAX_POINTS`).
CURVE_POINTS = 100


@dataclass(frozen=True)
class Objective:
    """A task's objective and training loss, each with its unit ("" when unitless)."""

    name: str
    unit: str
    loss: str = "training loss"
    loss_unit: str = ""
    #: Training steps of a trial whose fidelity leaves them to the task; None: unknown.
    default_steps: int | None = None
    #: How δ reads: "absolute" (in `gap_unit`) or "relative" (% of f*).
    delta_kind: DeltaKind = "absolute"
    #: The report's suboptimality targets when a spec gives none (the first is the main one).
    deltas: tuple[float, ...] = (0.5, 1.0)

    @property
    def label(self) -> str:
        """The objective with its unit, e.g. "validation error (%)"."""
        return with_unit(self.name, self.unit)

    @property
    def loss_label(self) -> str:
        """The learning curve's quantity with its unit, e.g. "training loss (nats)"."""
        return with_unit(self.loss, self.loss_unit)

    @property
    def gap_unit(self) -> str:
        """The unit of a difference of two objectives: percentage points for a percentage."""
        return "pp" if self.unit == "%" else self.unit

    @property
    def delta_unit(self) -> str:
        """The unit of this task's δ: "pp" for an error %, "% of f*" when relative."""
        return delta_unit(self.delta_kind, self.gap_unit)

    def best_label(self) -> str:
        """The best-so-far axis, e.g. "best validation error so far (%)"."""
        return with_unit(f"best {self.name} so far", self.unit)


def with_unit(name: str, unit: str) -> str:
    """`name (unit)`, or the bare name when unitless."""
    return f"{name} ({unit})" if unit else name


_NATS = "cross-entropy, nats"
_ERROR = Objective("validation error", "%", "training loss", _NATS, 1000)
OBJECTIVES: dict[str, Objective] = {
    "mnist1d-mlp": _ERROR,
    "mnist1d-cnn": _ERROR,
    "mnist1d-resnet": _ERROR,
    "cifar10-wrn": Objective("validation error", "%", "training loss", _NATS, 10_000),
    "charlm-lstm": Objective(
        "validation bits per character",
        "bpc",
        "training loss",
        "bits per character",
        1000,
        delta_kind="relative",
        deltas=(1.0, 2.0),
    ),
    "eq11": Objective("distance to the optimum |w_T − w*|", "", "|w_t − w*|", "", 100_000),
}
#: The labels of a task this table does not know (a plugin task).
UNKNOWN = Objective("objective", "")


def objective_of(task: str) -> Objective:
    """The objective of `task` (generic labels for an unknown task)."""
    return OBJECTIVES.get(task, UNKNOWN)


def delta_kind_of(tasks: Iterable[str]) -> DeltaKind:
    """The δ kind that tables of `tasks` share (absolute for none); ValueError if they differ."""
    kinds = {objective_of(task).delta_kind for task in tasks}
    if len(kinds) > 1:
        raise ValueError(f"these tasks read δ differently ({', '.join(sorted(kinds))})")
    return kinds.pop() if kinds else "absolute"


def curve_steps(length: int, steps: int | None) -> list[int]:
    """The training step each of a curve's `length` points ends at.

    A worker reports ≤ `CURVE_POINTS` means over equal windows of the `steps` steps (a
    diverged trial's curve cut short); a longer curve counts as evenly spaced. Unknown
    steps: the points are numbered 1..length.
    """
    if steps is None or steps < 1:
        return list(range(1, length + 1))
    windows = min(CURVE_POINTS, steps)
    if length <= windows:
        return window_ends(steps, windows)[:length]
    return [round((k + 1) * steps / length) for k in range(length)]


def window_ends(steps: int, windows: int) -> list[int]:
    """The step (exclusive) at which each of `windows` near-equal windows of `steps` ends."""
    base, extra = divmod(steps, windows)
    ends, end = [], 0
    for i in range(windows):
        end += base + (1 if i < extra else 0)
        ends.append(end)
    return ends
