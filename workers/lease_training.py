"""The trainer adapter between a lease and `workers.trainer`: a lease's trials in, one
`Outcome` per trial out (its seeds averaged, chance-clipped), and the wire result of each.

A `Trainer` is any callable ``(lease, progress) -> outcomes``: `torch_trainer` is the real
one, `load_trainer` names another by import path (tests and custom training code). This
module imports torch only inside `torch_trainer`'s training call.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from studies.protocol import MAX_CURVE, LeaseResponse, TrialResult
from workers.diagnostics import DiagnosticsRecord, wire_diagnostics

if TYPE_CHECKING:  # the trainer imports torch; this module must not, until it trains
    from workers.trainer import TrialResult as TrainedSeed

#: Progress of a lease's training: steps done, of total.
ProgressFn = Callable[[int, int], None]


@dataclass
class Outcome:
    """What training one leased trial produced (the value averaged over its seeds).

    `seed_values` etc. hold each seed's result when the trainer kept them; `chance` is the
    task's chance level, at which a diverged seed counts; `seed_diagnostics` each seed's
    mechanism records, when the fidelity asked for them and the optimizer has them.
    """

    value: float
    test_value: float | None = None
    curve: list[float] = field(default_factory=list)
    diverged: bool = False
    seconds: float = 0.0
    seed_values: list[float] | None = None
    seed_test_values: list[float] | None = None
    seed_diverged: list[bool] | None = None
    chance: float | None = None
    seed_diagnostics: list[list[DiagnosticsRecord]] | None = None
    #: The precision and determinism policy it trained under (`workers.numerics`).
    numerics: str | None = None


#: Trains every trial of a lease; outcomes in the lease's trial order.
Trainer = Callable[[LeaseResponse, ProgressFn], list[Outcome]]


def seed_outcome(runs: Sequence[TrainedSeed], chance: float) -> Outcome:
    """One trial's outcome from its seeds' runs: each seed chance-clipped (a diverged seed
    at chance, the others unchanged below it), the value their mean, diverged if any seed."""
    flags = [r.diverged for r in runs]
    values = [chance if d else min(r.objective, chance) for r, d in zip(runs, flags, strict=True)]
    tests = [chance if d else min(r.test_metric, chance) for r, d in zip(runs, flags, strict=True)]
    finite_tests = all(math.isfinite(t) for t in tests)
    return Outcome(
        value=math.fsum(values) / len(values),
        test_value=math.fsum(tests) / len(tests) if finite_tests else None,
        curve=_mean_curve([r.curve for r in runs]),
        diverged=any(flags),
        seconds=max(r.seconds for r in runs),
        seed_values=values,
        seed_test_values=tests if finite_tests else None,
        seed_diverged=flags,
        chance=chance,
        seed_diagnostics=[r.diagnostics for r in runs]
        if any(r.diagnostics for r in runs)
        else None,
    )


def _mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    """The pointwise mean of `curves`, as long as the shortest."""
    length = min((len(c) for c in curves), default=0)
    return [sum(c[k] for c in curves) / len(curves) for k in range(length)]


def wire_result(token: str, outcome: Outcome) -> TrialResult:
    """The wire result (non-finite curve points dropped; ValidationError on a bad value)."""
    test = outcome.test_value
    return TrialResult(
        token=token,
        value=outcome.value,
        test_value=test if test is not None and math.isfinite(test) else None,
        curve=[v for v in outcome.curve if math.isfinite(v)][:MAX_CURVE],
        diverged=outcome.diverged,
        seconds=max(0.0, outcome.seconds),
        seed_values=outcome.seed_values,
        seed_test_values=outcome.seed_test_values,
        seed_diverged=outcome.seed_diverged,
        chance=outcome.chance,
        seed_diagnostics=wire_diagnostics(outcome.seed_diagnostics),
        numerics=outcome.numerics,
    )


def torch_trainer(device: str | None = None) -> Trainer:
    """The real trainer (workers.trainer): one batched `train` call per optimizer setting, on
    the task built with the lease's options (a lease holds trials of one task config)."""

    def train_lease(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        from workers.device import resolve_device
        from workers.numerics import numerics_label
        from workers.tasks import get_task
        from workers.trainer import TrialConfig, train

        assert lease.task is not None and lease.fidelity is not None
        fidelity = lease.fidelity
        task = get_task(lease.task.name, lease.task.config)  # the lease's options, one task
        chance = task.chance
        seeds = [fidelity.seed + s for s in range(fidelity.seeds)]
        groups: dict[str, list[int]] = {}
        for index, trial in enumerate(lease.trials):
            groups.setdefault(trial.optimizer.model_dump_json(), []).append(index)
        outcomes: list[Outcome | None] = [None] * len(lease.trials)
        finished_steps = 0
        for members in groups.values():
            ref = lease.trials[members[0]].optimizer
            configs = [
                TrialConfig(lr=lease.trials[i].alpha, eps=lease.trials[i].eps, seed=s)
                for i in members
                for s in seeds
            ]
            last_total = [0]

            def report(
                done: int, total: int, base: int = finished_steps, seen: list[int] = last_total
            ) -> None:
                seen[0] = total
                progress(base + done, base + total)

            results = train(
                task,
                ref.name,
                configs,
                steps=fidelity.steps,
                batch_size=fidelity.batch_size,
                device=device,
                optimizer_settings=ref.train_settings(),
                progress=report,
                diagnostics_every=fidelity.diagnostics_every,
                eps_arg=ref.eps_arg,
            )
            finished_steps += last_total[0]
            for k, index in enumerate(members):
                runs = results[k * len(seeds) : (k + 1) * len(seeds)]
                outcomes[index] = seed_outcome(runs, chance)
        label = numerics_label(resolve_device(device))  # after training set the policy
        for outcome in outcomes:
            if outcome is not None:
                outcome.numerics = label
        return [o for o in outcomes if o is not None]

    return train_lease


def load_trainer(spec: str) -> Trainer:
    """A trainer named ``module:attribute`` (tests and custom training code)."""
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise ValueError(f"--train-function needs MODULE:ATTRIBUTE, got {spec!r}")
    return getattr(importlib.import_module(module), attribute)
