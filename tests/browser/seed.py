"""A database for the browser tests, filled over the real HTTP API: a finished experiment with
its report, a continuous-space study, a paused experiment half done, and a grid study that
is still running (its queued trials are what the tests report live)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import httpx

WORKER = {"worker_id": "gpu-box-1", "name": "gpu-box-1", "host": "lab-7", "device": "cpu (test)"}
LIVE_GRID = (6, 8)


def error_percent(optimizer: str, alpha: float, eps: float) -> float:
    """A made-up validation error: AvaGrad's α and ε separable, Adam's coupled (α/ε matters)."""
    a, e = math.log10(alpha), math.log10(eps)
    if optimizer == "avagrad":
        bowl = (a + 1.0) ** 2 + 0.3 * (e + 2.0) ** 2
    else:
        bowl = (a - e - 4.0) ** 2 + 0.05 * (e + 6.0) ** 2
    return round(min(90.0, 8.0 + 3.0 * bowl), 4)


def report_some(
    http: httpx.Client, limit: int, k: int = 4, worker: dict[str, Any] | None = None
) -> int:
    """Lease and report up to `limit` trials (k per lease); returns how many were reported."""
    done = 0
    while done < limit:
        body = {**(worker or WORKER), "max_trials": min(k, limit - done)}
        lease = http.post("/api/leases", json=body).json()
        if not lease["trials"]:
            break
        seeds = lease["fidelity"]["seeds"] if lease.get("fidelity") else 1
        for trial in lease["trials"]:
            value = error_percent(trial["optimizer"]["name"], trial["alpha"], trial["eps"])
            curve = [value + 30.0 / (step + 1) for step in range(12)]
            body: dict[str, Any] = {
                "token": lease["token"],
                "value": value,
                "test_value": value + 0.7,
                "curve": curve,
                "seconds": 0.5,
            }
            if seeds > 1:  # seed s is off by ±0.4 pp, the mean stays `value`
                spread = [0.4 * (2 * s - (seeds - 1)) / max(seeds - 1, 1) for s in range(seeds)]
                body["seed_values"] = [value + d for d in spread]
                body["value"] = sum(body["seed_values"]) / seeds
            response = http.post(f"/api/trials/{trial['trial_id']}/result", json=body)
            response.raise_for_status()
            done += 1
    return done


def grid(n_alpha: int, n_eps: int) -> dict[str, list[float]]:
    """An explicit grid: α from 1e-4, ε from 1e-8, one decade apart."""
    return {
        "alphas": [10.0 ** (-4 + k) for k in range(n_alpha)],
        "epsilons": [10.0 ** (-8 + k) for k in range(n_eps)],
    }


def wait_for_report(http: httpx.Client, experiment_id: int, timeout: float = 240.0) -> None:
    """Ask for the report until it is computed (202 while the server works on it)."""
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/api/experiments/{experiment_id}/report")
        if response.status_code == 200:
            return
        if response.status_code != 202 or time.monotonic() > deadline:
            raise RuntimeError(f"no report: {response.status_code} {response.text[:500]}")
        time.sleep(0.2)


@dataclass
class Seeded:
    """Ids of what the seed created."""

    report_experiment: int
    live_experiment: int
    bounds_study: int
    live_study: int


def seed(http: httpx.Client) -> Seeded:
    """Fill an empty server (see the module docstring); computes the finished report."""
    done = http.post(
        "/api/experiments",
        json={
            "name": "adam vs avagrad (toy)",
            "task": "mnist1d-mlp",
            "optimizers": ["adam", {"name": "avagrad", "weight_decay": 1e-3}],
            "space": grid(5, 5),
            "fidelity": {"steps": 5, "seeds": 2},
            "replay": {
                "tuners": ["grid", "random", "gld", "cgld"],
                "seeds": 8,
                "deltas": [0.5, 1.0],
                "bootstrap": {"tables": 8, "replays": 3},
            },
        },
    ).json()["id"]
    report_some(http, 50, k=10)
    wait_for_report(http, done)

    bounds = http.post(
        "/api/studies",
        json={
            "name": "adam random search",
            "task": "mnist1d-mlp",
            "optimizer": "adam",
            "space": {"alpha": {"low": 1e-5, "high": 1.0}, "eps": {"low": 1e-9, "high": 1e-1}},
            "tuner": {"name": "random", "seed": 3},
            "budget": 12,
            "fidelity": {"steps": 7},
        },
    ).json()["id"]
    report_some(http, 12)

    partial = http.post(
        "/api/experiments",
        json={
            "name": "paused grids",
            "task": "mnist1d-mlp",
            "optimizers": ["adam", "avagrad"],
            "space": grid(3, 3),
            "fidelity": {"steps": 9},
        },
    ).json()
    report_some(http, 5)
    for study in partial["studies"]:
        http.post(f"/api/studies/{study['id']}/pause").raise_for_status()

    live = http.post(
        "/api/studies",
        json={
            "name": "avagrad live grid",
            "task": "mnist1d-mlp",
            "optimizer": "avagrad",
            "space": grid(*LIVE_GRID),
            "tuner": {"name": "grid", "seed": 1},
            "fidelity": {"steps": 11},
        },
    ).json()["id"]
    report_some(http, 20)
    return Seeded(done, partial["id"], bounds, live)
