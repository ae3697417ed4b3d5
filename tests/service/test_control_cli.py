"""`avatune study pause|resume|cancel|delete` and `avatune experiment create|list|show|pause|
resume|cancel|delete` against a running server: what they print, their exit statuses, the
server's refusals (404, 409, 401) as one clear line, and never a traceback."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from service.cli import register
from tests.service.helpers import ThreadServer, app_for, grid_study

TOKEN = "tok-cli"
EXPERIMENT = {
    "kind": "experiment",
    "name": "cli grids",
    "task": "mnist1d-mlp",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-4, 1e-3, 1e-2], "epsilons": [1e-8, 1e-6, 1e-4]},
    "fidelity": {"steps": 5, "seeds": 2},
    "replay": {
        "tuners": ["random", "cgld"],
        "seeds": 4,
        "bootstrap": {"tables": 4, "replays": 2},
    },
}


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    register(root)
    return root


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ThreadServer]:
    with ThreadServer(app_for(sqlite_url, token=TOKEN)) as running:
        yield running


@pytest.fixture
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        yield client


def _run(app: typer.Typer, server: ThreadServer, *args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, [*args, "--server", server.url, "--token", TOKEN], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _text(result: Result) -> str:
    return " ".join(result.output.split())


def _error(alpha: float, eps: float, optimizer: str) -> float:
    a, e = math.log10(alpha), math.log10(eps)
    bowl = (a + 3) ** 2 + 0.3 * (e + 6) ** 2 if optimizer == "avagrad" else (a - e - 4) ** 2
    return 10.0 + 3.0 * bowl


def _finish(http: httpx.Client) -> None:
    """Lease and report every queued trial, with two seeds' values each."""
    while True:
        lease = http.post("/api/leases", json={"worker_id": "w", "max_trials": 9}).json()
        if not lease["trials"]:
            return
        for trial in lease["trials"]:
            value = _error(trial["alpha"], trial["eps"], trial["optimizer"]["name"])
            body = {
                "token": lease["token"],
                "value": value,
                "seed_values": [value - 0.2, value + 0.2],
            }
            http.post(f"/api/trials/{trial['trial_id']}/result", json=body).raise_for_status()


def test_study_pause_resume_cancel_delete(
    app: typer.Typer, server: ThreadServer, http: httpx.Client
) -> None:
    sid = http.post("/api/studies", json=grid_study("cli study")).json()["id"]
    paused = _run(app, server, "study", "pause", str(sid))
    assert paused.exit_code == 0
    assert _text(paused) == f"study {sid} (cli study) paused: now paused; trainings: queued 9"
    again = _run(app, server, "study", "pause", str(sid))
    assert again.exit_code == 1
    assert _text(again) == f"409: cannot pause study {sid}: it is paused"
    resumed = _run(app, server, "study", "resume", str(sid))
    assert resumed.exit_code == 0 and "resumed: now running" in resumed.output
    cancelled = _run(app, server, "study", "cancel", str(sid))
    assert cancelled.exit_code == 0 and "trainings: cancelled 9" in _text(cancelled)
    kept = _run(app, server, "study", "delete", str(sid), stdin="n\n")
    assert kept.exit_code == 1
    assert f"Delete study {sid} (cli study) and its 9 trainings?" in kept.output
    assert "nothing deleted (pass --yes to delete without asking)" in kept.output
    assert http.get(f"/api/studies/{sid}").status_code == 200
    no_terminal = _run(app, server, "study", "delete", str(sid))  # no answer: nothing deleted
    assert no_terminal.exit_code == 1 and "nothing deleted" in no_terminal.output
    deleted = _run(app, server, "study", "delete", str(sid), stdin="y\n")
    assert deleted.exit_code == 0 and f"study {sid} (cli study) deleted" in deleted.output
    assert http.get(f"/api/studies/{sid}").status_code == 404
    missing = _run(app, server, "study", "delete", str(sid), "--yes")
    assert missing.exit_code == 1 and _text(missing) == f"404: study {sid} does not exist"
    for action in ("pause", "resume", "cancel"):
        gone = _run(app, server, "study", action, str(sid))
        assert gone.exit_code == 1 and _text(gone) == f"404: study {sid} does not exist"


def test_refused_without_the_token(app: typer.Typer, server: ThreadServer) -> None:
    result = CliRunner().invoke(app, ["experiment", "pause", "1", "--server", server.url])
    assert result.exit_code == 1 and "401" in result.output
    assert "Traceback" not in result.output


def test_experiment_create_from_a_file_or_a_builtin(
    app: typer.Typer, server: ThreadServer, tmp_path: Path
) -> None:
    spec = tmp_path / "experiment.yaml"
    spec.write_text(yaml.safe_dump(EXPERIMENT))
    created = _run(app, server, "experiment", "create", "-f", str(spec))
    assert created.exit_code == 0, created.output
    assert "experiment 1 (cli grids): 2 grid studies, 18 trainings queued" in created.output
    assert "follow it: avatune experiment show 1" in created.output
    builtin = _run(app, server, "experiment", "create", "--builtin", "quick-mnist1d")
    assert builtin.exit_code == 0 and "experiment 2 (" in builtin.output
    assert "242 trainings queued" in builtin.output
    listed = _run(app, server, "experiment", "list")
    assert listed.exit_code == 0
    lines = [line for line in listed.output.splitlines() if "cli grids" in line]
    assert len(lines) == 1 and "running" in lines[0] and "adam," in lines[0]
    assert listed.output.index("quick") < listed.output.index("cli grids")  # newest first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a spec: -f spec.yaml, or --builtin NAME (not both)"),
        (["-f", "{spec}", "--builtin", "quick-mnist1d"], "(not both)"),
        (["--builtin", "nope"], "no built-in spec 'nope'; choose one of"),
        (["-f", "{study}"], "is a study spec, not an experiment"),
        (["-f", "{broken}"], "invalid spec"),
        (["-f", "{missing}"], "invalid spec"),
    ],
)
def test_experiment_create_refuses_a_spec_it_cannot_submit(
    app: typer.Typer, server: ThreadServer, tmp_path: Path, args: list[str], message: str
) -> None:
    paths = {
        "spec": tmp_path / "e.yaml",
        "study": tmp_path / "s.yaml",
        "broken": tmp_path / "b.yaml",
        "missing": tmp_path / "missing.yaml",
    }
    paths["spec"].write_text(yaml.safe_dump(EXPERIMENT))
    paths["study"].write_text(yaml.safe_dump(grid_study("a study")))
    paths["broken"].write_text(yaml.safe_dump({**EXPERIMENT, "optimizers": ["adam", "adam"]}))
    result = _run(app, server, "experiment", "create", *[a.format(**paths) for a in args])
    assert result.exit_code == 2
    assert message in _text(result)
    assert httpx.get(f"{server.url}/api/experiments").json() == []


def test_experiment_list_when_there_is_none(app: typer.Typer, server: ThreadServer) -> None:
    result = _run(app, server, "experiment", "list")
    assert result.exit_code == 0 and "no experiments yet" in result.output


def test_experiment_pause_resume_cancel_show_delete(
    app: typer.Typer, server: ThreadServer, http: httpx.Client
) -> None:
    eid = http.post("/api/experiments", json=EXPERIMENT).json()["id"]
    shown = _run(app, server, "experiment", "show", str(eid))
    assert shown.exit_code == 0
    assert _text(shown).startswith(f"experiment {eid} (cli grids): running, 0.0% of its grids")
    assert shown.output.count("0/9") == 2
    assert "the report is computed once every grid is complete" in shown.output
    paused = _run(app, server, "experiment", "pause", str(eid))
    assert paused.exit_code == 0
    assert _text(paused) == (
        f"experiment {eid} (cli grids) paused: now paused; grids: adam paused, avagrad paused"
    )
    again = _run(app, server, "experiment", "pause", str(eid))
    assert again.exit_code == 1 and _text(again) == (
        f"409: cannot pause experiment {eid}: it is paused (only a running experiment can be "
        "paused)"
    )
    resumed = _run(app, server, "experiment", "resume", str(eid))
    assert resumed.exit_code == 0 and "now running" in resumed.output
    cancelled = _run(app, server, "experiment", "cancel", str(eid))
    assert cancelled.exit_code == 0 and "adam cancelled, avagrad cancelled" in _text(cancelled)
    shown = _run(app, server, "experiment", "show", str(eid))
    assert shown.exit_code == 0 and f"experiment {eid} (cli grids): cancelled" in shown.output
    assert "cancelled: its grids stay incomplete, so it has no report" in shown.output
    raw = _run(app, server, "experiment", "show", str(eid), "--json")
    body = json.loads(raw.output)
    assert body["state"] == "cancelled" and body["report"] is None
    resume = _run(app, server, "experiment", "resume", str(eid))
    assert resume.exit_code == 1 and "it is cancelled" in resume.output
    kept = _run(app, server, "experiment", "delete", str(eid), stdin="no\n")
    assert kept.exit_code == 1 and "nothing deleted" in kept.output
    assert "with its 2 grid studies, their trials and its report?" in kept.output
    deleted = _run(app, server, "experiment", "delete", str(eid), "-y")
    assert deleted.exit_code == 0 and f"experiment {eid} (cli grids) deleted" in deleted.output
    for args in (("show",), ("cancel",), ("pause",), ("resume",), ("delete", "--yes")):
        gone = _run(app, server, "experiment", args[0], str(eid), *args[1:])
        assert gone.exit_code == 1, args
        assert _text(gone) == f"404: experiment {eid} does not exist", args


def test_a_grid_is_deleted_with_its_experiment(
    app: typer.Typer, server: ThreadServer, http: httpx.Client
) -> None:
    experiment = http.post("/api/experiments", json=EXPERIMENT).json()
    sid = experiment["studies"][0]["id"]
    refused = _run(app, server, "study", "delete", str(sid), "--yes")
    assert refused.exit_code == 1
    assert _text(refused) == (
        f"study {sid} is a grid of experiment {experiment['id']}: delete the experiment "
        f"(avatune experiment delete {experiment['id']})"
    )


def test_experiment_show_prints_the_report_summary(
    app: typer.Typer, server: ThreadServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # replays inline: no process pool to start
    eid = http.post("/api/experiments", json=EXPERIMENT).json()["id"]
    _finish(http)
    first = _run(app, server, "experiment", "show", str(eid))
    assert first.exit_code == 0
    assert "100.0% of its grids" in first.output and first.output.count("9/9") == 2
    assert "report:" in first.output or "Conclusion" in first.output
    deadline = time.monotonic() + 120  # the server computes the report in the background
    while http.get(f"/api/experiments/{eid}/report").status_code == 202:
        assert time.monotonic() < deadline, "no report"
        time.sleep(0.1)
    shown = _run(app, server, "experiment", "show", str(eid))
    assert shown.exit_code == 0, shown.output
    text = _text(shown)
    for part in ("grids (Figure 1)", "tuning cost", "Conclusion:", "Verdict.", "cgld"):
        assert part in text, part
    assert '"metrics"' not in shown.output and len(shown.output.splitlines()) < 120
    raw = json.loads(_run(app, server, "experiment", "show", str(eid), "--json").output)
    assert raw["report_ready"] and "conclusion" in raw["report"]["metrics"]
    assert [t["optimizer"] for t in raw["report"]["tables"]] == ["adam", "avagrad"]
