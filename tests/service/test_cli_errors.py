"""Bad input on the command line: one clear message with the fix, a non-zero exit, never a
traceback — database URLs, server URLs, spec files, names, Ctrl-C, and --help at 80 columns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from service.cli import register
from studies.analysis_cli import register as register_analysis
from tests.service.helpers import (
    FAKE_TRAINER,
    ROOT,
    ThreadServer,
    _env,
    app_for,
    grid_study,
    wait_until,
)
from tests.service.postgres import free_port
from workers.cli import register as register_workers

FIXTURES = ROOT / "tests" / "studies" / "fixtures"
WORKER = (sys.executable, "-m", "studies", "worker")


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    root = typer.Typer()
    for attach in (register, register_workers, register_analysis):
        attach(root)
    return root


def invoke(app: typer.Typer, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def assert_refused(result: Result, code: int, *fixes: str) -> None:
    """Exit `code`, no traceback, and every `fix` in the output (line breaks ignored)."""
    output = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    for fix in fixes:
        assert fix in output, result.output


# -- database URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve"]])
def test_a_file_path_is_not_a_database_url(
    app: typer.Typer, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(app, *command, "--db", "demo.db")
    absolute = f"sqlite:///{tmp_path.resolve() / 'demo.db'}"
    assert_refused(result, 2, "not a database URL: 'demo.db'", absolute, "sqlite:///./demo.db")
    assert "postgresql+psycopg://user@host/db" in result.output
    assert not (tmp_path / "demo.db").exists()


def test_a_bad_database_url_in_the_environment(app: typer.Typer) -> None:
    result = invoke(app, "db", "upgrade", env={"AVATUNE_DATABASE_URL": "demo.db"})
    assert_refused(result, 2, "AVATUNE_DATABASE_URL: not a database URL", "sqlite:///")


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql': avatune runs on SQLite"),
        ("postgres://u:secret@h/db", "write postgresql:// (not postgres://)"),
        ("sqlite+aiosqlite:///x.db", "write sqlite:///path/to/avatune.db"),
        ("sqlite:////no/such/folder/x.db", "create it (mkdir -p /no/such/folder)"),
    ],
)
def test_unusable_database_urls(app: typer.Typer, url: str, fix: str) -> None:
    result = invoke(app, "db", "upgrade", "--db", url)
    assert_refused(result, 2, fix)
    assert "secret" not in result.output


def test_an_unreachable_postgresql_is_one_line(app: typer.Typer) -> None:
    url = f"postgresql+psycopg://avatune@127.0.0.1:{free_port()}/avatune"
    result = invoke(app, "db", "upgrade", "--db", url)
    assert_refused(result, 1, "cannot connect to postgresql+psycopg://avatune@127.0.0.1")
    assert "is PostgreSQL running there" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_revision(app: typer.Typer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert_refused(invoke(app, "db", "upgrade", "--db", url, "--revision", "nope"), 2, "'nope'")


# -- server URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "fix"),
    [
        ("127.0.0.1:8792", "add the scheme: http://127.0.0.1:8792"),
        ("http://127.0.0.1:8792/api", "drop the path /api"),
        ("http://127.0.0.1:8792/api", "the server URL is http://127.0.0.1:8792"),
    ],
)
@pytest.mark.parametrize("command", [["study", "list"], ["worker", "--once"]])
def test_malformed_server_urls(app: typer.Typer, command: list[str], server: str, fix: str) -> None:
    assert_refused(invoke(app, *command, "--server", server), 2, fix)


def test_a_server_that_is_not_running(app: typer.Typer) -> None:
    port = free_port()
    result = invoke(app, "study", "list", "--server", f"http://127.0.0.1:{port}")
    assert_refused(result, 1, "cannot reach the server", f"`avatune serve --port {port}`")


def test_a_server_that_is_not_avatune(app: typer.Typer, other_server: str) -> None:
    result = invoke(app, "study", "list", "--server", other_server)
    assert_refused(result, 1, "answered 404 on /api/studies: it is not an avatune server")


def test_avatunes_own_404_is_shown_as_is(app: typer.Typer, sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url)) as server:
        result = invoke(app, "study", "show", "9", "--server", server.url)
    assert_refused(result, 1, "404")
    assert "not an avatune server" not in result.output


def worker_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`avatune worker ARGS --quiet` with the fake trainer, to its exit."""
    command = [*WORKER, *args, "--quiet", "--train-function", FAKE_TRAINER]
    return subprocess.run(
        command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def test_worker_once_fails_fast_when_nothing_listens() -> None:
    port = free_port()
    done = worker_process("--server", f"http://127.0.0.1:{port}", "--once")
    assert done.returncode == 1, done.stderr
    assert "cannot reach the server" in done.stderr and "Traceback" not in done.stderr
    assert f"`avatune serve --port {port}`" in done.stderr


def test_worker_stops_at_once_on_a_server_that_is_not_avatune(other_server: str) -> None:
    started = time.monotonic()
    done = worker_process("--server", other_server, timeout=30)  # no --once: still fails
    assert done.returncode == 1, done.stderr
    assert "answered 501 on /api/leases: it is not an avatune server" in done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 30


# -- spec files --------------------------------------------------------------------------------


def test_yaml_syntax_errors_name_the_line(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\ntask: mnist1d-mlp\noptimizer: [adam\n")
    result = invoke(app, "study", "create", "-f", str(bad))
    assert_refused(result, 2, f"cannot read {bad}: line 4 column 1: expected ',' or ']'")
    assert len(result.output.strip().splitlines()) <= 3


def test_a_missing_spec_file(app: typer.Typer, tmp_path: Path) -> None:
    result = invoke(app, "study", "create", "-f", str(tmp_path / "nope.yaml"))
    assert_refused(result, 2, "nope.yaml", "does not exist")


def test_unknown_fields_get_a_suggestion(app: typer.Typer, tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text(yaml.safe_dump(grid_study() | {"budjet": 4}))
    result = invoke(app, "study", "create", "-f", str(spec))
    assert_refused(result, 2, "budjet: unknown field 'budjet'; did you mean 'budget'?")
    assert "pydantic" not in result.output and "Extra inputs" not in result.output


@pytest.mark.parametrize("command", [["study", "create"], ["experiment", "create"]])
def test_experiment_spec_typos_get_a_suggestion(
    app: typer.Typer, command: list[str], tmp_path: Path
) -> None:
    spec = tmp_path / "experiment.yaml"
    body = {"name": "e", "task": "mnist1d-mlp", "optimizers": ["adam", "avagrad"]}
    spec.write_text(yaml.safe_dump(body | {"replay": {"tunrs": ["grid"]}}))
    result = invoke(app, *command, "-f", str(spec))
    assert_refused(result, 2, "replay.tunrs: unknown field 'tunrs'; did you mean 'tuners'?")


def test_shape_errors_show_the_accepted_form(app: typer.Typer, tmp_path: Path) -> None:
    spec = tmp_path / "shape.yaml"
    space = {"alpha": [1, 0.001], "eps": {"low": 1e-8, "high": 1}}
    spec.write_text(yaml.safe_dump(grid_study(tuner="tpe") | {"space": space}))
    result = invoke(app, "study", "create", "-f", str(spec))
    assert_refused(result, 2, "space.alpha: expected {low, high}, e.g. alpha: {low: 1e-4")


def test_the_api_explains_spec_errors_too(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app_for(sqlite_url)) as client:
        response = client.post("/api/studies", json=grid_study() | {"budjet": 4})
        union = client.post(
            "/api/studies", json=grid_study(tuner={"name": "tpe", "config": {"x": [1]}})
        )
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["loc"] == ["body", "budjet"] and item["type"] == "extra_forbidden"
    assert item["msg"].startswith("unknown field 'budjet'; did you mean 'budget'?")
    assert "pydantic.dev" not in response.text and "url" not in item
    [item] = union.json()["detail"]  # one item, not one per member type of the union
    assert item["loc"] == ["body", "tuner", "config", "x"]
    assert item["msg"] == "expected a single value: a number, a string, true/false or null"


# -- names, before torch --------------------------------------------------------------------

BEFORE_TORCH = """
import sys
from studies.cli import main
sys.argv = ["avatune", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    print("exit", done.code, "torch" in sys.modules)
"""


@pytest.mark.parametrize(
    ("args", "fix"),
    [
        (["grid", "--optimizer", "lion", "--out", "t.json"], "unknown optimizer 'lion'; choose"),
        (["grid", "--optimizer", "adamm", "--out", "t.json"], "did you mean 'adam'?"),
        (["grid", "--optimizer", "adam", "--task", "mnist1d-mpl", "--out", "t.json"], "did you"),
        (["grid", "--optimizer", "adam", "--grid", "fine", "--out", "t.json"], "unknown grid"),
        (["grid", "--optimizer", "adam", "--device", "tpu", "--out", "t.json"], "cuda:N"),
        (["worker", "--device", "tpu", "--once"], "unknown device 'tpu'"),
        (["replay", str(FIXTURES / "adam.json"), "--tuners", "tpee", "--out", "r.json"], "'tpe'"),
    ],
)
def test_names_are_refused_before_torch_loads(args: list[str], fix: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BEFORE_TORCH, *args],
        cwd=tmp_path,
        env=_env({"COLUMNS": "200"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split()[-3:] == ["exit", "2", "False"], done.stdout + done.stderr
    assert fix in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "t.json").exists()


# -- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    table = str(FIXTURES / "adam.json")
    command = [sys.executable, "-m", "studies", "replay", table, table, "--seeds", "5000"]
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path / "r.json")],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C signals the whole group: so does this test
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        time.sleep(4)
        os.killpg(process.pid, signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, out
    assert "Traceback" not in out and not (tmp_path / "r.json").exists()


def test_ctrl_c_stops_the_server_with_130(tmp_path: Path) -> None:
    port, database = free_port(), f"sqlite:///{tmp_path / 's.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "studies", "serve", "--port", str(port), "--db", database],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert wait_until(healthy, 60)
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 130, out
    assert "Traceback" not in out


def test_a_worker_stopped_by_ctrl_c_releases_its_lease_and_exits_130(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url, lease_seconds=60)) as server:
        study = httpx.post(f"{server.url}/api/studies", json=grid_study(n_alpha=1, n_eps=2))
        trials = f"{server.url}/api/studies/{study.json()['id']}/trials"
        worker = subprocess.Popen(
            [*WORKER, "--server", server.url, "--quiet", "--train-function", FAKE_TRAINER],
            cwd=ROOT,
            env=_env({"AVATUNE_FAKE_SECONDS": "60"}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            leased = wait_until(
                lambda: {t["state"] for t in httpx.get(trials).json()["trials"]} == {"leased"}, 30
            )
            assert leased
            worker.send_signal(signal.SIGINT)
            out, _ = worker.communicate(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        states = {(t["state"], t["attempts"]) for t in httpx.get(trials).json()["trials"]}
    assert worker.returncode == 130, out
    assert states == {("queued", 0)} and "Traceback" not in out


# -- --help at 80 columns ----------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            yield from _commands(sub, (*path, name))


def _metavars(command: Any) -> list[str]:
    """The one-word metavars (e.g. <text|json>) of a command's visible options."""
    context = typer.Context(command)
    shown = []
    for param in getattr(command, "params", []):
        display = getattr(param, "display_type", None)
        if param.hidden or display is None:
            continue
        metavar = getattr(param, "metavar", None) or display(context)
        if metavar and " " not in metavar:
            shown.append(metavar)
    return shown


def test_every_help_fits_80_columns() -> None:
    from studies.cli import build_app

    root = build_app()
    runner = CliRunner()
    checked = 0
    for path, command in _commands(typer.main.get_command(root)):
        result = runner.invoke(root, [*path, "--help"], env={"COLUMNS": "80"})
        name = " ".join(("avatune", *path))
        assert result.exit_code == 0, (name, result.output)
        lines = result.output.splitlines()
        assert [line for line in lines if len(line) > 80] == [], name
        assert [line for line in lines if "…" in line] == [], (name, result.output)
        flat = " ".join(result.output.replace("│", " ").split())
        for shown in _metavars(command):
            assert shown in flat, (name, shown, "wrapped mid-word")
        checked += 1
    assert checked > 10
