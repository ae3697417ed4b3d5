"""16 concurrent clients lease from a study of 2,000 queued trials over real HTTP."""

from __future__ import annotations

import http.client
import json
import random
import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.service.helpers import ServerProcess, grid_study

CLIENTS = 16
N_ALPHA, N_EPS = 50, 40  # 2,000 trials


@pytest.mark.slow
def test_every_trial_is_leased_once_and_completed(database_url: str) -> None:
    with ServerProcess(database_url, lease_seconds=300) as server:
        spec = grid_study(n_alpha=N_ALPHA, n_eps=N_EPS)
        spec["space"]["alphas"] = [1e-6 * 1.2**k for k in range(N_ALPHA)]
        spec["space"]["epsilons"] = [1e-9 * 1.3**k for k in range(N_EPS)]
        created = httpx.post(f"{server.url}/api/studies", json=spec, timeout=60)
        assert created.status_code == 201, created.text
        study_id = created.json()["id"]
        leased: list[int] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(index: int) -> None:
            rng = random.Random(index)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

            def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                response = conn.getresponse()
                return response.status, json.loads(response.read())

            while True:
                body = {"worker_id": f"client-{index}", "max_trials": rng.randint(1, 4)}
                status, lease = post("/api/leases", body)
                if status != 200:
                    errors.append(f"lease {status}: {lease}")
                    return
                if not lease["trials"]:
                    conn.close()
                    return
                with lock:
                    leased.extend(t["trial_id"] for t in lease["trials"])
                for trial in lease["trials"]:
                    status, answer = post(
                        f"/api/trials/{trial['trial_id']}/result",
                        {"token": lease["token"], "value": trial["alpha"]},
                    )
                    if status != 200:
                        errors.append(f"result {status}: {answer}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        study = httpx.get(f"{server.url}/api/studies/{study_id}").json()
        trials = httpx.get(
            f"{server.url}/api/studies/{study_id}/trials", params={"limit": 5000}
        ).json()["trials"]
    assert not errors, errors[:5]
    repeats = [trial for trial, n in Counter(leased).items() if n > 1]
    assert not repeats and len(leased) == N_ALPHA * N_EPS
    assert study["state"] == "done" and study["counts"] == {"complete": N_ALPHA * N_EPS}
    assert {t["attempts"] for t in trials} == {1}
    assert len({(t["i_alpha"], t["j_eps"]) for t in trials}) == N_ALPHA * N_EPS
