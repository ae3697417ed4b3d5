"""Task options end to end: the spec's `task.config` reaches the model a worker trains,
trials of different options never share a lease, and bad options are refused (422, SpecError)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from avatune.lease_client import Backoff, ServiceClient
from studies.protocol import LeaseResponse
from studies.spec_errors import SpecError
from studies.specs import spec_from_file
from tests.service.helpers import ThreadServer, app_for, grid_study
from workers.lease_training import Outcome, ProgressFn, torch_trainer
from workers.loop import WorkerLoop
from workers.tasks.charlm import CharLSTM, CharLSTMModel

TINY = {"embedding": 3, "seq_len": 4, "eval_windows": 2, "eval_batch": 2}


def charlm_study(name: str, hidden: int) -> dict[str, Any]:
    """A 2-point grid study of a tiny character LSTM with `hidden` units."""
    spec = grid_study(name, n_alpha=1, n_eps=2, steps=3)
    spec["task"] = {"name": "charlm-lstm", "config": {**TINY, "hidden": hidden}}
    spec["fidelity"]["batch_size"] = 2
    return spec


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    with ThreadServer(app_for(sqlite_url, lease_seconds=60)) as running:
        yield running


def test_task_options_reach_the_trained_model(
    server: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = {}
    for hidden in (4, 6):
        response = httpx.post(f"{server.url}/api/studies", json=charlm_study(f"h{hidden}", hidden))
        assert response.status_code == 201, response.text
        ids[response.json()["id"]] = hidden
    built: list[tuple[int, int]] = []
    real_build = CharLSTM.build

    def build(self: CharLSTM, seed: int, configs: int, **kw: Any) -> CharLSTMModel:
        model = real_build(self, seed, configs, **kw)
        built.append((self.hidden, model.flat.shape[1]))  # parameters per configuration
        return model

    monkeypatch.setattr(CharLSTM, "build", build)
    leases: list[tuple[dict[str, Any], set[int]]] = []
    real = torch_trainer("cpu")

    def trainer(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
        assert lease.task is not None
        leases.append((dict(lease.task.config), {t.study_id for t in lease.trials}))
        return real(lease, progress)

    client = ServiceClient(server.url, backoff=Backoff(first=0.05, cap=0.2))
    loop = WorkerLoop(client, trainer, worker_id="w", max_batch=8, once=True)
    for _ in range(4):  # one lease per run
        if loop.run().delivered == 4:
            break
    assert loop.stats.delivered == 4 and len(leases) == 2
    for config, studies in leases:  # one task config per lease: never two models in one job
        assert [ids[s] for s in studies] == [config["hidden"]] * len(studies)
    sizes = dict(built)
    assert set(sizes) == {4, 6} and sizes[4] < sizes[6]
    values = {
        hidden: [
            t["value"] for t in httpx.get(f"{server.url}/api/studies/{sid}/trials").json()["trials"]
        ]
        for sid, hidden in ids.items()
    }
    assert values[4] != values[6]


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(app_for(sqlite_url)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hiden": 8}, "did you mean 'hidden'?"),
        ({"hidden": "big"}, "must be an integer"),
        ({"hidden": 10**9}, "between 1 and"),
    ],
)
def test_the_api_refuses_bad_task_options(
    client: TestClient, config: dict[str, Any], message: str
) -> None:
    spec = charlm_study("bad", 4)
    spec["task"]["config"] = config
    response = client.post("/api/studies", json=spec)
    assert response.status_code == 422, response.text
    assert message in response.text
    experiment = {"name": "e", "task": spec["task"], "optimizers": ["adam"]}
    response = client.post("/api/experiments", json=experiment)
    assert response.status_code == 422 and message in response.text
    plain = {"name": "m", "task": {"name": "mnist1d-mlp", "config": {"hidden": 8}}}
    response = client.post("/api/studies", json=plain | {"optimizer": "adam"})
    assert response.status_code == 422 and "takes no options" in response.text


def test_a_spec_file_with_a_bad_option_says_where_and_what(tmp_path: Path) -> None:
    path = tmp_path / "lm.yaml"
    spec = charlm_study("lm", 4)
    spec["task"]["config"]["seqlen"] = 16
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError) as error:
        spec_from_file(path)
    assert "task.config: unknown option 'seqlen' of task charlm-lstm" in str(error.value)
    assert "did you mean 'seq_len'?" in str(error.value)
