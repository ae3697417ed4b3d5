"""Task options: `studies.specs.TASK_OPTIONS` matches the task constructors, and get_task
builds (and shares) a task per set of options."""

from __future__ import annotations

import inspect

import pytest
import torch

from studies.specs import TASK_OPTIONS
from workers import trainer
from workers.tasks import TASK_TYPES, TASKS, get_task
from workers.tasks.charlm import CharLSTM
from workers.trainer import TrialConfig, train

#: Constructor keywords that are the worker's business, not a spec's (a local data folder).
WORKER_ONLY = {"cifar10-wrn": {"data_dir"}}


@pytest.mark.parametrize("name", sorted(TASK_TYPES))
def test_options_table_matches_the_constructor(name: str) -> None:
    parameters = inspect.signature(TASK_TYPES[name]).parameters
    keywords = set(parameters) - WORKER_ONLY.get(name, set())
    assert set(TASK_OPTIONS[name]) == keywords, name
    for key, kind in TASK_OPTIONS[name].items():
        assert kind.__name__ in str(parameters[key].annotation), (name, key)


def test_one_shared_instance_per_options() -> None:
    assert get_task("charlm-lstm") is TASKS["charlm-lstm"]
    small = get_task("charlm-lstm", {"hidden": 16, "seq_len": 8})
    assert isinstance(small, CharLSTM) and (small.hidden, small.seq_len) == (16, 8)
    assert get_task("charlm-lstm", {"seq_len": 8, "hidden": 16}) is small
    assert get_task("charlm-lstm", {"hidden": 17, "seq_len": 8}) is not small
    assert get_task("mnist1d-mlp", {}) is TASKS["mnist1d-mlp"]


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("charlm-lstm", {"hiden": 8}, "did you mean 'hidden'?"),
        ("charlm-lstm", {"hidden": 8.5}, "must be an integer"),
        ("charlm-lstm", {"hidden": 0}, "between 1 and"),
        ("mnist1d-mlp", {"hidden": 8}, "takes no options"),
        ("mnist2d", {}, "built-in tasks: mnist1d-mlp"),
    ],
)
def test_bad_options_are_refused(name: str, config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_task(name, config)


def test_an_option_changes_what_trains() -> None:
    """Hidden size 4 and 6 of the same tiny LSTM: different parameter counts and results."""
    sizes = dict(embedding=3, seq_len=4, eval_windows=2, eval_batch=2)
    tasks = [get_task("charlm-lstm", {**sizes, "hidden": h}) for h in (4, 6)]
    counts = [
        t.build(0, 1, device=torch.device("cpu"), dtype=torch.float32).flat.shape[1] for t in tasks
    ]
    assert counts[0] < counts[1]
    config = [TrialConfig(1e-2, 1e-8, 0)]
    values = [train(t, "adam", config, steps=3, batch_size=2)[0].objective for t in tasks]
    assert values[0] != values[1]


def test_cpu_jobs_take_the_tasks_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer cuts CPU jobs at the task's `cpu_max_batch` (the LSTM's by its size)."""
    limits: list[int] = []
    real = trainer.plan_jobs

    def plan(configs: list, max_batch: int, min_jobs: int = 1) -> list:
        limits.append(max_batch)
        return real(configs, max_batch, min_jobs)

    monkeypatch.setattr(trainer, "plan_jobs", plan)
    sizes = dict(embedding=3, seq_len=2, eval_windows=1, eval_batch=1)
    for task in (
        get_task("charlm-lstm", {**sizes, "hidden": 4}),
        get_task("charlm-lstm", {**sizes, "hidden": 33}),
    ):
        train(task, "adam", [TrialConfig(1e-2, 1e-8, 0)], steps=1, batch_size=1, device="cpu")
    train("eq11", "adam", [TrialConfig(1e-2, 1e-8, 0)], steps=1, device="cpu")
    assert limits == [16, 8, trainer.CPU_MAX_BATCH]
