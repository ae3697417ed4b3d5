"""`avatune.client.Client` on studies, against a live server: create (model, mapping,
file), get, list, pause, resume, cancel, delete, trials as records and as a DataFrame,
exports, waiting, and each refusal as its own error with the server's message."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import avatune.client
from avatune.client import (
    Client,
    Conflict,
    InvalidRequest,
    NotAvatuneServer,
    NotFound,
    ServerUnreachable,
    SpecKindError,
    StudyExport,
    Unauthorized,
    WaitTimeout,
)
from avatune.lease_client import ServiceClient
from studies.protocol import LeaseRequest, TrialResult
from studies.schemas import StudyOut, TrialOut
from studies.spec_errors import SpecError
from studies.specs import StudySpec
from tests.client.conftest import TOKEN, external_study, objective
from tests.service.helpers import ThreadServer
from tests.service.postgres import free_port


def _finish(client: Client, study: StudyOut) -> None:
    """Train every trial of `study` with the made-up objective."""
    summary = client.run_trials(study, lambda t: objective(t.alpha, t.eps))
    assert summary.ended == "study done", summary


def test_create_from_a_model_a_mapping_or_a_file(client: Client, tmp_path: Path) -> None:
    model = client.create_study(StudySpec.model_validate(external_study("model")))
    mapping = client.create_study(external_study("mapping"))
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(external_study("file")))
    from_file = client.create(path)
    from_text_path = client.create_study(str(path))
    assert isinstance(from_file, StudyOut)
    assert [model.name, mapping.name, from_file.name] == ["model", "mapping", "file"]
    assert model.state == "running" and model.budget == 4 and model.counts == {"queued": 4}
    assert model.spec.task.name == "external" and model.spec.task.config["model"] == "tiny"
    assert client.study(mapping.id) == client.study(mapping)
    assert client.study(mapping).name == "mapping"
    listed = client.studies()
    assert [s.id for s in listed] == [from_text_path.id, from_file.id, mapping.id, model.id]
    assert [s.id for s in client.studies(limit=2, offset=1)] == [from_file.id, mapping.id]


def test_an_invalid_spec_is_refused_before_any_request(client: Client, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"budjet: unknown field 'budjet'; did you mean 'budget'"):
        client.create_study(external_study() | {"budjet": 4})
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="cannot read"):
        client.create_study(broken)
    with pytest.raises(SpecError, match="no spec file"):
        client.create_study(tmp_path / "missing.yaml")
    experiment = {"name": "e", "task": "mnist1d-mlp", "optimizers": ["adam"]}
    with pytest.raises(SpecKindError, match="is an experiment spec: submit it with create_exp"):
        client.create_study(experiment)
    with pytest.raises(TypeError, match="a spec is a StudySpec"):
        client.create_study(42)  # type: ignore[arg-type]
    assert client.studies() == [] and client.experiments() == []


def test_pause_resume_cancel_delete(client: Client) -> None:
    study = client.create_study(external_study())
    paused = client.pause_study(study)
    assert paused.id == study.id and paused.state == "paused"
    assert [s.id for s in client.studies(state="paused")] == [study.id]
    assert client.studies(state="running") == []
    with pytest.raises(Conflict) as again:
        client.pause_study(study.id)
    assert again.value.status_code == 409
    assert str(again.value) == f"409: cannot pause study {study.id}: it is paused"
    assert client.resume_study(study).state == "running"
    cancelled = client.cancel_study(study)
    assert cancelled.state == "cancelled" and cancelled.counts == {"cancelled": 4}
    client.delete_study(study)
    with pytest.raises(NotFound) as gone:
        client.study(study)
    assert str(gone.value) == f"404: study {study.id} does not exist"
    with pytest.raises(NotFound):
        client.delete_study(study.id)


def test_trials_as_records_every_page(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    study = client.create_study(external_study(n=3))
    _finish(client, study)
    monkeypatch.setattr(avatune.client, "PAGE", 2)  # 9 trainings: five pages
    trials = client.study_trials(study)
    assert [t.number for t in trials] == list(range(9))
    assert all(isinstance(t, TrialOut) and t.state == "complete" for t in trials)
    assert {(t.alpha, t.eps) for t in trials} == {
        (a, e) for a in (1e-3, 1e-2, 1e-1) for e in (1e-8, 1e-6, 1e-4)
    }
    assert all(t.value == pytest.approx(objective(t.alpha, t.eps)) for t in trials)
    assert all(t.curve is None for t in trials)
    assert client.study_trials(study, states=["queued", "failed"]) == []
    assert len(client.study_trials(study, states=["complete"])) == 9
    best = client.study(study).best
    assert best is not None and (best.alpha, best.eps) == (1e-2, 1e-8)


def test_trials_as_a_dataframe(client: Client) -> None:
    study = client.create_study(external_study())
    _finish(client, study)
    frame = client.trials_frame(study)
    assert len(frame) == 4 and list(frame.columns) == list(TrialOut.model_fields)
    assert set(frame["state"]) == {"complete"} and frame["number"].tolist() == [0, 1, 2, 3]
    best = frame.loc[frame["value"].idxmin()]
    assert (best["alpha"], best["eps"]) == (1e-2, 1e-8)
    assert (
        str(frame["finished_at"].dtype).startswith("datetime64")
        and frame["finished_at"].notna().all()
    )
    assert frame["value"].dtype == float
    assert len(client.trials_frame(study, states=["queued"])) == 0


def test_frames_need_pandas(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    study = client.create_study(external_study())
    with pytest.raises(ImportError, match=r"pip install 'avatune\[pandas\]'"):
        client.trials_frame(study)


def test_exports_and_diagnostics(client: Client) -> None:
    study = client.create_study(external_study())
    _finish(client, study)
    export = client.export(study)
    assert isinstance(export, StudyExport) and export.study.id == study.id
    assert len(export.trainings) == 4 and export.repeats == []
    csv = client.export_csv(study).splitlines()
    assert csv[0].startswith("training,number,repeats,state,alpha,eps") and len(csv) == 5
    assert client.diagnostics(study) == []  # opt-in: fidelity.diagnostics_every


def test_diagnostics_of_the_trainings_that_sent_them(client: Client, server: ThreadServer) -> None:
    study = client.create_study(external_study() | {"fidelity": {"diagnostics_every": 5}})
    record = {"step": 5, "gamma": 0.5, "zero_fraction": 0.25, "shares": {"W1": 1.0}}
    service = ServiceClient(server.url, TOKEN)
    lease = service.lease(LeaseRequest(worker_id="w", study_id=study.id))
    [trial] = lease.trials
    assert lease.token is not None
    result = {"token": lease.token, "value": 3.0, "seed_values": [3.0]}
    body = TrialResult.model_validate(result | {"seed_diagnostics": [[record]]})
    assert service.result(trial.trial_id, body)
    service.close()
    _finish(client, study)  # the others send none
    [diagnostics] = client.diagnostics(study)
    assert diagnostics.trial_id == trial.trial_id and diagnostics.state == "complete"
    assert [[r.gamma for r in seed] for seed in diagnostics.seeds] == [[0.5]]


def test_health_and_workers(client: Client) -> None:
    assert client.health().status == "ok" and client.health().database == "sqlite"
    assert client.workers() == []
    study = client.create_study(external_study())
    client.run_trials(study, lambda t: 1.0, worker_id="my-laptop-loop")
    [worker] = client.workers()
    assert worker.id == "my-laptop-loop" and worker.name == "user loop"
    assert worker.complete == 4 and worker.active == 0


def test_wait_polls_until_the_study_is_done(client: Client, server: ThreadServer) -> None:
    study = client.create_study(external_study())
    with pytest.raises(WaitTimeout, match=f"study {study.id} not finished after 0.2 s") as slow:
        client.wait(study, timeout=0.2, interval=0.05, progress=False)
    assert slow.value.last is not None and slow.value.last.state == "running"

    def later() -> None:
        time.sleep(0.3)
        with Client(server.url, TOKEN) as other:
            other.run_trials(study.id, lambda t: 5.0, signals=False)

    thread = threading.Thread(target=later)
    thread.start()
    done = client.wait(study.id, interval=0.05, progress=True)
    thread.join()
    assert isinstance(done, StudyOut) and done.state == "done" and done.trainings_done == 4
    cancelled = client.create_study(external_study("c"))
    client.cancel_study(cancelled)
    assert client.wait(cancelled, progress=False).state == "cancelled"


# -- refusals ----------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_unauthorized(server: ThreadServer) -> None:
    with Client(server.url) as anonymous, pytest.raises(Unauthorized) as refused:
        anonymous.create_study(external_study())
    assert refused.value.status_code == 401
    with Client(server.url, "wrong-token") as wrong, pytest.raises(Unauthorized):
        wrong.run_trials(1, lambda t: 1.0)
    with Client(server.url) as anonymous:
        assert anonymous.studies() == []  # reading needs no token


def test_invalid_requests_read_as_one_line_per_issue(client: Client) -> None:
    with pytest.raises(InvalidRequest) as refused:
        client.studies(limit=0)
    assert refused.value.status_code == 422
    assert str(refused.value).startswith("422: query.limit: ")
    assert isinstance(refused.value.detail, list)
    with pytest.raises(TypeError, match="a study is its record or its id"):
        client.study("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        client.study(0)


def test_an_unreachable_server() -> None:
    port = free_port()
    with Client(f"http://127.0.0.1:{port}") as nobody, pytest.raises(ServerUnreachable) as error:
        nobody.studies()
    assert isinstance(error.value, ConnectionError)
    assert f"cannot reach the server at http://127.0.0.1:{port}" in str(error.value)
    assert f"`avatune serve --port {port}`" in str(error.value)


def test_a_server_that_is_not_avatune(other_server: str) -> None:
    with Client(other_server) as other, pytest.raises(NotAvatuneServer) as error:
        other.study(3)
    assert "answered 404 on /api/studies/3: it is not an avatune server" in str(error.value)


def test_a_malformed_url_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=re.escape("add the scheme: http://127.0.0.1:8000")):
        Client("127.0.0.1:8000")
    with pytest.raises(ValueError, match="drop the path /api"):
        Client("http://127.0.0.1:8000/api")


def test_url_and_token_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATUNE_SERVER", "http://example.org:9999")
    monkeypatch.setenv("AVATUNE_TOKEN", "from-env")
    with Client() as from_env:
        assert from_env.url == "http://example.org:9999" and from_env._api.token == "from-env"
    monkeypatch.delenv("AVATUNE_SERVER")
    monkeypatch.delenv("AVATUNE_TOKEN")
    with Client() as default:
        assert default.url == "http://127.0.0.1:8000" and default._api.token is None
