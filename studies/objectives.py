"""What each task's numbers mean, for axis and colour-bar labels: the objective (a trial's
value) and the training loss of its learning curve, with units, and the default steps.

Pure data mirrored from `workers.tasks` (tests/workers/test_objectives.py keeps the two in
step), so the server labels charts without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    "cifar10-wrn": Objective("validation error", "%", "training loss", _NATS, 10_000),
    "charlm-lstm": Objective(
        "validation loss", "bits per character", "training loss", "bits per character", 1000
    ),
    "eq11": Objective("distance to the optimum |w_T − w*|", "", "|w_t − w*|", "", 100_000),
}
#: The labels of a task this table does not know (a plugin task).
UNKNOWN = Objective("objective", "")


def objective_of(task: str) -> Objective:
    """The objective of `task` (generic labels for an unknown task)."""
    return OBJECTIVES.get(task, UNKNOWN)


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
