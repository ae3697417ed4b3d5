"""`avatune.client.Client` on experiments, against a live server: create, get, list,
pause, resume, cancel, delete, the grid tables, the report (not ready, then computed), and
waiting for it."""

from __future__ import annotations

import math
import os

import pytest

from avatune.client import Client, Conflict, NotFound, ReportNotReady, SpecKindError
from studies.schemas import ExperimentOut, ExperimentReport
from studies.table import GridTable
from tests.client.conftest import external_study

EXPERIMENT = {
    "kind": "experiment",
    "name": "client grids",
    "task": "mnist1d-mlp",
    "optimizers": ["adam", "avagrad"],
    "space": {"alphas": [1e-4, 1e-3, 1e-2], "epsilons": [1e-8, 1e-6, 1e-4]},
    "fidelity": {"steps": 5, "seeds": 2},
    "replay": {"tuners": ["random", "cgld"], "seeds": 4, "bootstrap": {"tables": 4, "replays": 2}},
}


def _error(alpha: float, eps: float, optimizer: str) -> float:
    a, e = math.log10(alpha), math.log10(eps)
    bowl = (a + 3) ** 2 + 0.3 * (e + 6) ** 2 if optimizer == "avagrad" else (a - e - 4) ** 2
    return 10.0 + 3.0 * bowl


def test_create_get_list_pause_resume_cancel_delete(client: Client) -> None:
    created = client.create_experiment(EXPERIMENT)
    assert isinstance(created, ExperimentOut) and created.name == "client grids"
    assert [s.optimizer for s in created.studies] == ["adam", "avagrad"]
    assert [s.budget for s in created.studies] == [9, 9] and not created.report_ready
    second = client.create(EXPERIMENT | {"name": "second"})
    assert isinstance(second, ExperimentOut)
    assert [e.id for e in client.experiments()] == [second.id, created.id]
    assert [e.id for e in client.experiments(limit=1)] == [second.id]
    assert client.experiment(created.id) == client.experiment(created)
    assert client.pause_experiment(created).state == "paused"
    assert {s.state for s in client.experiment(created).studies} == {"paused"}
    with pytest.raises(Conflict, match="only a running experiment can be paused"):
        client.pause_experiment(created.id)
    assert client.resume_experiment(created).state == "running"
    cancelled = client.cancel_experiment(created)
    assert cancelled.state == "cancelled" and {s.state for s in cancelled.studies} == {"cancelled"}
    with pytest.raises(Conflict, match="was cancelled before its grids were complete"):
        client.report(created)
    client.delete_experiment(created)
    with pytest.raises(NotFound, match=f"404: experiment {created.id} does not exist"):
        client.experiment(created)
    with pytest.raises(NotFound):
        client.delete_experiment(created.id)
    with pytest.raises(SpecKindError, match="is a study spec: submit it with create_study"):
        client.create_experiment(external_study())


def test_the_report_once_the_grids_are_complete(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # replays inline: no process pool
    experiment = client.create_experiment(EXPERIMENT)
    with pytest.raises(Conflict, match="409: "):
        client.report(experiment, wait=False)
    with pytest.raises(Conflict):
        client.tables(experiment)
    for study in experiment.studies:  # the user's loop trains both grids
        summary = client.run_trials(
            study, lambda t: _error(t.alpha, t.eps, t.optimizer.name), signals=False
        )
        assert summary.reported == 9 and summary.ended == "study done"
    tables = client.tables(experiment)
    assert all(isinstance(t, GridTable) for t in tables)
    assert [t.optimizer for t in tables] == ["adam", "avagrad"]
    assert client.experiment(experiment).state == "done"
    with pytest.raises(ReportNotReady, match="being computed"):
        client.report(experiment, wait=False)  # the first ask starts computing it
    done = client.wait(experiment, interval=0.1, progress=True, timeout=120)
    assert isinstance(done, ExperimentOut) and done.report_ready and done.state == "done"
    report = client.report(experiment, wait=False)
    assert isinstance(report, ExperimentReport) and report.experiment_id == experiment.id
    assert "conclusion" in report.metrics
    assert [t["optimizer"] for t in report.tables] == ["adam", "avagrad"]
    assert client.report(experiment.id).computed_at == report.computed_at


def test_waiting_for_the_grids_only(client: Client) -> None:
    experiment = client.create_experiment(EXPERIMENT)
    for study in experiment.studies:
        client.run_trials(study, lambda t: 20.0, signals=False)
    done = client.wait_experiment(experiment.id, report=False, progress=False)
    assert done.state == "done" and not done.report_ready
    cancelled = client.create_experiment(EXPERIMENT | {"name": "cancelled"})
    client.cancel_experiment(cancelled)
    assert client.wait(cancelled, progress=False).state == "cancelled"
