"""A live server on SQLite (uvicorn in a thread, real HTTP) and a client of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from avatune.client import Client
from avatune.lease_client import Backoff
from tests.service.helpers import ThreadServer, app_for

TOKEN = "tok-client-tests"
#: Short leases, so heartbeats matter within a test; two attempts before a trial fails.
LEASE_SECONDS = 1.5
FAST = Backoff(first=0.05, factor=2.0, cap=0.5)


def external_study(
    name: str = "mine", *, tuner: str = "grid", budget: int | None = None, n: int = 2
) -> dict[str, Any]:
    """A study spec trained by a user's loop (task `external`) on an n × n grid."""
    spec: dict[str, Any] = {
        "name": name,
        "task": {"name": "external", "config": {"model": "tiny", "layers": 2}},
        "optimizer": "adam",
        "space": {
            "alphas": [10.0 ** (-3 + k) for k in range(n)],
            "epsilons": [10.0 ** (-8 + 2 * k) for k in range(n)],
        },
        "tuner": {"name": tuner, "seed": 3},
        "fidelity": {"steps": 7},
    }
    if budget is not None:
        spec["budget"] = budget
    return spec


def objective(alpha: float, eps: float) -> float:
    """A made-up validation error, lowest at α = 1e-2, ε = 1e-8."""
    return 10.0 + abs(alpha - 1e-2) * 100 + eps * 1e6


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    app = app_for(sqlite_url, token=TOKEN, lease_seconds=LEASE_SECONDS, max_attempts=2)
    with ThreadServer(app) as running:
        yield running


@pytest.fixture
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.url, TOKEN, backoff=FAST) as made:
        yield made
