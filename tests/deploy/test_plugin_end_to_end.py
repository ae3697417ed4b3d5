"""The example plugin (examples/plugin), installed by pip without network into a directory of
its own, runs end to end through a real `avatune serve` and a real `avatune worker`: an
experiment on its batched task with `adam` and `torch.optim:NAdam` gives a report, a study
on its one-at-a-time task with its own optimizer trains, and a study naming an optimizer no
worker can import waits with the worker's import error. The plugin's own tests run too."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.helpers import ROOT, ServerProcess, _env, start_worker, wait_until

pytestmark = pytest.mark.slow
PLUGIN = ROOT / "examples" / "plugin"
TASK = "example-spirals-batched"
NADAM = "torch.optim:NAdam"
MISSING = "torch.optim:NoSuchThing"
GRID = {"alphas": [1e-3, 1e-2, 1e-1], "epsilons": [1e-8, 1e-4, 1e-1]}
FIDELITY = {"steps": 100, "batch_size": 50}
#: An access-log line of a 5xx response (`service.access_log`), or a traceback.
SERVER_ERROR = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) \S+ 5\d\d\b|Traceback")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of processes that have the plugin: `pip install --target` of a copy
    of its source (building in place would leave build/ and *.egg-info in the repository),
    offline (--no-index, --no-deps, this venv's setuptools), put on PYTHONPATH so that
    importlib.metadata finds its entry points."""
    base = tmp_path_factory.mktemp("plugin")
    source, site = base / "source", base / "site"
    junk = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")
    shutil.copytree(PLUGIN, source, ignore=junk)
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    offline = ["--no-index", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip, *offline, "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "avatune_example").is_dir()
    return {"PYTHONPATH": str(site)}


class Api:
    """HTTP calls to the server that fail the test on any 5xx response."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = httpx.request(method, f"{self.url}{path}", json=body, timeout=60)
        assert response.status_code < 500, f"{method} {path}: {response.text[:2000]}"
        return response

    def get(self, path: str) -> Any:
        response = self.call("GET", path)
        assert response.status_code == 200, response.text[:2000]
        return response.json()

    def create(self, path: str, body: dict[str, Any]) -> Any:
        response = self.call("POST", path, body)
        assert response.status_code == 201, response.text[:2000]
        return response.json()


EXPERIMENT = {
    "kind": "experiment",
    "name": "spirals",
    "task": {"name": TASK, "config": {"hidden": 16}},
    "optimizers": ["adam", {"name": NADAM}],
    "space": GRID,
    "fidelity": FIDELITY,
    "replay": {"tuners": ["random", "cgld"], "seeds": 4, "bootstrap": {"tables": 4, "replays": 2}},
}


def _study(name: str, task: str, optimizer: str, alphas: list[float]) -> dict[str, Any]:
    return {
        "kind": "study",
        "name": name,
        "task": task,
        "optimizer": optimizer,
        "space": {"alphas": alphas, "epsilons": [1e-8, 1e-2]},
        "tuner": {"name": "grid", "seed": 0},
        "fidelity": FIDELITY,
    }


def test_the_example_plugin_runs_through_serve_and_worker(
    sqlite_url: str, tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    with ServerProcess(sqlite_url, lease_seconds=60, log=server_log, env=plugin_env) as server:
        api = Api(server.url)
        experiment = api.create("/api/experiments", EXPERIMENT)
        own = api.create(
            "/api/studies", _study("one at a time", "example-spirals", "example-adamax", [1e-1])
        )
        missing = api.create("/api/studies", _study("missing", TASK, MISSING, [1e-2]))
        typo = api.call("POST", "/api/studies", _study("typo", "example-spiral", "adam", [1e-2]))
        assert typo.status_code == 422 and "did you mean 'example-spirals'?" in typo.text
        worker = start_worker(server.url, max_batch=32, fake=False, log=worker_log, env=plugin_env)
        try:
            exp_path, own_path = f"/api/experiments/{experiment['id']}", f"/api/studies/{own['id']}"
            finished = wait_until(
                lambda: api.get(exp_path)["state"] == api.get(own_path)["state"] == "done",
                60,
                interval=0.5,
            )
            assert finished, worker_log.read_text()[-5000:]
            answers: list[httpx.Response] = []

            def report_ready() -> bool:
                answers.append(api.call("GET", f"{exp_path}/report"))
                return answers[-1].status_code != 202

            assert wait_until(report_ready, 60, interval=0.5)
            missing_path = f"/api/studies/{missing['id']}"
            import_error = (
                f"AttributeError: torch.optim has no attribute {MISSING.partition(':')[2]!r}"
            )
            assert wait_until(
                lambda: import_error in (api.get(missing_path)["waiting"] or ""), 30, interval=0.5
            ), api.get(missing_path)
            shown = api.get(exp_path)
            own_trials = api.get(f"{own_path}/trials")["trials"]
            waiting, waiting_trials = api.get(missing_path), api.get(f"{missing_path}/trials")
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
    assert code == 0, worker_log.read_text()[-5000:]

    report = answers[-1]
    assert report.status_code == 200, report.text[:2000]
    body = report.json()
    assert body["metrics"]
    assert [t["optimizer"] for t in body["tables"]] == ["adam", NADAM]
    for table in body["tables"]:
        assert table["task"] == TASK and table["chance"] == 50.0  # the plugin's chance level
        assert table["alphas"] == GRID["alphas"] and len(table["error"]) == 3
        assert min(min(row) for row in table["error"]) < 40  # learnt: below chance (50 %)

    assert shown["task"] == TASK and shown["spec"]["task"] == EXPERIMENT["task"]
    assert [s["optimizer"] for s in shown["studies"]] == ["adam", NADAM]
    for study in shown["studies"]:
        assert study["task"] == TASK and study["state"] == "done"
        assert sum(study["counts"].values()) == 9
        assert set(study["counts"]) <= {"complete", "diverged"}, study["counts"]
    assert len(own_trials) == 2 and all(t["state"] == "complete" for t in own_trials)
    assert all(0 <= t["value"] < 25 for t in own_trials)  # Adamax at α = 0.1 learns

    assert waiting["state"] == "running" and waiting["counts"] == {"queued": 2}
    assert f"can run optimizer {MISSING!r}" in waiting["waiting"]
    assert [t["attempts"] for t in waiting_trials["trials"]] == [0, 0]  # never leased
    assert f"cannot run optimizer {MISSING}" in worker_log.read_text()
    assert not SERVER_ERROR.search(server_log.read_text()), server_log.read_text()[-5000:]


def test_the_plugins_own_tests_pass(plugin_env: dict[str, str]) -> None:
    """`pytest examples/plugin/tests` against the installed plugin (so `make test` runs them)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(PLUGIN / "tests"), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=_env(plugin_env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and "skipped" not in done.stdout
