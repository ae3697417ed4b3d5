"""Optuna's generic sampler tests (vendored test_samplers.py), run on GLD and CGLD.

By default only the cases parametrized with GLDSampler or CoordinateGLDSampler run; the
other samplers' cases are Optuna's business and take minutes (GPSampler, CMA-ES).
``AVATUNE_OPTUNA_ALL_SAMPLERS=1`` runs the whole upstream module.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import pytest

OURS = ("GLDSampler", "CoordinateGLDSampler")


def _ours(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(name in callspec.id.split("-") for name in OURS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this folder's cases that do not run GLD or CGLD (unless asked for all)."""
    if os.environ.get("AVATUNE_OPTUNA_ALL_SAMPLERS") == "1":
        return
    here = os.path.dirname(__file__)
    keep, drop = [], []
    for item in items:
        mine = os.path.dirname(str(item.path)) == here
        (drop if mine and not _ours(item) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _start_method_restored() -> Iterator[None]:
    """test_reproducible_in_other_process forces "spawn" process-wide: undo it afterwards."""
    method = multiprocessing.get_start_method(allow_none=True)
    yield
    multiprocessing.set_start_method(method, force=True)
