"""Installed, the plugin's names resolve everywhere avatune looks them up."""

from __future__ import annotations

import pytest
import torch
from avatune_example.adamax import Adamax
from avatune_example.batched import BatchedSpirals
from avatune_example.spirals import Spirals

from optim import optimizer_info
from studies.plugin_names import plugin_names
from studies.specs import parse_spec, unknown_names
from workers.capabilities import WorkerCapabilities
from workers.tasks import get_task

TASKS = ["example-spirals", "example-spirals-batched"]


def test_tasks_resolve_by_entry_point_name_with_their_options() -> None:
    one, batched = get_task("example-spirals"), get_task("example-spirals-batched", {"hidden": 8})
    assert type(one) is Spirals and not one.batchable
    assert type(batched) is BatchedSpirals and batched.batchable and batched.hidden == 8
    assert get_task("example-spirals-batched", {"hidden": 8}) is batched  # one shared instance
    with pytest.raises(ValueError, match=r"unknown option 'hiden'.*did you mean 'hidden'"):
        get_task("example-spirals", {"hiden": 8})


def test_the_optimizer_resolves_with_its_eps() -> None:
    info = optimizer_info("example-adamax")
    assert info.uses_eps and info.default_lr == 2e-3 and info.default_eps == 1e-8
    built = info.plain([torch.zeros(1, requires_grad=True)], lr=0.1, eps=1e-3)
    assert isinstance(built, Adamax) and built.defaults["eps"] == 1e-3


def test_servers_and_workers_see_the_names() -> None:
    """The server's submission check reads the same metadata; a worker advertises them."""
    assert set(TASKS) <= set(plugin_names("task")) and "example-adamax" in plugin_names("optimizer")
    spec = parse_spec(
        {
            "name": "spirals",
            "task": {"name": "example-spirals", "config": {"hidden": 16}},
            "optimizer": "example-adamax",
            "space": {"alphas": [1e-3, 1e-2], "epsilons": [1e-8]},
        }
    )
    assert unknown_names(spec) == []
    found = WorkerCapabilities.discover()
    ours = {*TASKS, "example-adamax"}
    assert set(TASKS) <= found.tasks and "example-adamax" in found.optimizers
    assert not [c for c in found.unable if c.name in ours]
