"""Test helpers: specs, an in-thread uvicorn server, server and worker subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from service.app import create_app
from service.settings import Settings
from tests.service.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
FAKE_TRAINER = "tests.service.fake_training:train"


def grid_study(
    name: str = "g",
    *,
    n_alpha: int = 3,
    n_eps: int = 3,
    tuner: str | dict[str, Any] = "grid",
    budget: int | None = None,
    optimizer: str = "adam",
    steps: int = 10,
) -> dict[str, Any]:
    """A study spec (JSON) on an explicit n_alpha × n_eps grid."""
    spec: dict[str, Any] = {
        "name": name,
        "task": "mnist1d-mlp",
        "optimizer": optimizer,
        "space": {
            "alphas": [10.0 ** (-4 + k) for k in range(n_alpha)],
            "epsilons": [10.0 ** (-8 + k) for k in range(n_eps)],
        },
        "tuner": tuner if isinstance(tuner, dict) else {"name": tuner, "seed": 7},
        "fidelity": {"steps": steps},
    }
    if budget is not None:
        spec["budget"] = budget
    return spec


#: The Host that Starlette's TestClient sends, allowed by `settings`.
TEST_HOST = "testserver"


def settings(url: str, **overrides: Any) -> Settings:
    """Test settings: the database, short retries, the TestClient's Host allowed."""
    overrides.setdefault("allowed_hosts", [TEST_HOST])
    return Settings(database_url=url, idle_retry_seconds=0.05, **overrides)


class ThreadServer:
    """A uvicorn server for an app, in a background thread (real HTTP, real concurrency)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadServer:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=30,
            limit_concurrency=200,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=20)

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def app_for(url: str, **overrides: Any) -> Any:
    """An app on a migrated database."""
    return create_app(settings(url, **overrides))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the repository on PYTHONPATH, updated with `extra` (whose
    PYTHONPATH, if any, comes after the repository's: e.g. a plugin installed with --target)."""
    env = dict(os.environ)
    extra = dict(extra or {})
    paths = [str(ROOT), extra.pop("PYTHONPATH", ""), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


class ServerProcess:
    """`python -m service serve` in a subprocess."""

    def __init__(
        self,
        url: str,
        *,
        port: int | None = None,
        lease_seconds: float = 2.0,
        log: Path | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db_url = url
        self.env = dict(env or {})
        self.workers = workers
        self.port = port or free_port()
        self.lease_seconds = lease_seconds
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServerProcess:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--port",
                str(self.port),
                "--db",
                self.db_url,
                "--lease-seconds",
                str(self.lease_seconds),
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            env=_env({"AVATUNE_IDLE_RETRY_SECONDS": "0.1", **self.env}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def start_worker(
    server: str,
    *,
    max_batch: int = 2,
    fake: bool = True,
    fake_seconds: float = 0.02,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """An `avatune worker` subprocess (the fake trainer unless `fake` is False), with `env`
    added to its environment (`_env`)."""
    command = [
        sys.executable,
        "-c",
        "import typer; from workers.cli import worker; typer.run(worker)",
        "--server",
        server,
        "--max-batch",
        str(max_batch),
        "--quiet",
    ]
    if fake:
        command += ["--train-function", FAKE_TRAINER]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=_env({"AVATUNE_FAKE_SECONDS": str(fake_seconds), **(env or {})}),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def drive(client: Any, *, worker: str = "w", k: int = 1, value: Any = None) -> int:
    """Lease and report until nothing is left; returns the number of results delivered."""
    from tests.service.fake_training import objective

    value = value or objective
    delivered = 0
    while True:
        lease = client.post("/api/leases", json={"worker_id": worker, "max_trials": k}).json()
        if not lease["trials"]:
            return delivered
        for trial in lease["trials"]:
            response = client.post(
                f"/api/trials/{trial['trial_id']}/result",
                json={"token": lease["token"], "value": value(trial["alpha"], trial["eps"])},
            )
            assert response.status_code == 200, response.text
            delivered += 1
