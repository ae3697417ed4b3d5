"""A server and workers as child processes of this one (what `avatune demo` runs).

Every process is started in its own session with its output in a log file, and `stop`
ends them all: SIGTERM first (a worker then releases its lease, so nothing waits for a
lease to expire on the next run), SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

#: `python -m studies` is the `avatune` command; children use it so no PATH is needed.
AVATUNE = [sys.executable, "-m", "studies"]


#: `nvidia-smi -L` lines: "GPU 0: NVIDIA H100 (UUID: GPU-…)", "  MIG 1g.10gb Device 0: (UUID: …)".
LISTED = re.compile(r"^\s*(GPU (\d+)|MIG .*?):(?:.*\(UUID: ([\w-]+)\))?")


@dataclass(frozen=True)
class ListedGpu:
    """A GPU (or MIG instance) as nvidia-smi lists it; index None for a MIG instance."""

    index: int | None
    uuid: str | None


def listed_gpus() -> list[ListedGpu] | None:
    """The GPUs `nvidia-smi -L` lists (it ignores CUDA_VISIBLE_DEVICES): None without
    nvidia-smi, none when it fails (no working driver)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = [LISTED.match(line) for line in listing.splitlines()]
    return [ListedGpu(int(m.group(2)) if m.group(2) else None, m.group(3)) for m in found if m]


def visible_count(visible: str, listed: list[ListedGpu] | None) -> int:
    """How many devices CUDA makes of CUDA_VISIBLE_DEVICES=`visible`: its entries up to the
    first one that names no device (CUDA ignores it and the rest: "" and "-1" hide all), a
    UUID matched by prefix; checked against `listed` when there is a listing."""
    chosen: list[str] = []
    for raw in visible.split(","):
        entry = raw.strip()
        if entry.isascii() and entry.isdigit():
            known = listed is None or any(gpu.index == int(entry) for gpu in listed)
            name = f"index {int(entry)}"
        elif entry.startswith(("GPU-", "MIG-")):
            matches = [gpu.uuid for gpu in listed or [] if (gpu.uuid or "").startswith(entry)]
            known = listed is None or len(matches) == 1
            name = matches[0] if listed is not None and known else entry
        else:
            break
        if not known or name in chosen:
            break
        chosen.append(name)
    return len(chosen)


def gpu_count() -> int:
    """NVIDIA GPUs CUDA will show the workers: CUDA_VISIBLE_DEVICES decides when set (checked
    against nvidia-smi -L when it runs), else nvidia-smi -L. The server never imports torch."""
    listed = listed_gpus()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return sum(gpu.index is not None for gpu in listed or [])
    return visible_count(visible, listed)


def default_devices(count: int | None = None) -> list[str]:
    """One worker per GPU, else one CPU worker per two cores; `count` workers when given
    (cycling over the GPUs)."""
    gpus = gpu_count()
    if gpus:
        devices = [f"cuda:{index}" for index in range(gpus)]
        return devices if count is None else (devices * count)[:count]
    return ["cpu"] * (max(1, (os.cpu_count() or 1) // 2) if count is None else count)


@dataclass
class LocalFleet:
    """The demo's processes: one server, any number of workers, all logged under `log_dir`."""

    log_dir: Path
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def _spawn(
        self, args: list[str], log_name: str, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / log_name).open("ab")
        self._logs.append(log)
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )

    def start_server(self, database_url: str, host: str, port: int, env: dict[str, str]) -> str:
        """Start `avatune serve`, wait until it answers /healthz, and return its URL."""
        if _port_taken(host, port):
            raise RuntimeError(f"port {port} on {host} is taken: stop what uses it or pass --port")
        args = [*AVATUNE, "serve", "--db", database_url, "--host", host, "--port", str(port)]
        self.server = self._spawn(args, "server.log", env)
        url = f"http://{host}:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.server.returncode}; see "
                    f"{self.log_dir / 'server.log'} (is port {port} taken? pass --port)"
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within 60 s; see {self.log_dir}")

    def start_workers(self, url: str, devices: list[str], env: dict[str, str]) -> None:
        """Start one `avatune worker` per device; CPU workers share the cores evenly."""
        cpu_workers = sum(device == "cpu" for device in devices)
        threads = max(1, (os.cpu_count() or 1) // max(1, cpu_workers))
        for index, device in enumerate(devices):
            worker_env = {**env, "OMP_NUM_THREADS": str(threads)} if device == "cpu" else env
            args = [*AVATUNE, "worker", "--server", url, "--device", device, "--quiet"]
            self.workers.append(self._spawn(args, f"worker-{index}.log", worker_env))

    def workers_alive(self) -> int:
        """How many workers are still running."""
        return sum(worker.poll() is None for worker in self.workers)

    def stop_workers(self, grace: float = 15.0) -> None:
        """SIGTERM every worker, then SIGKILL what is left after `grace` seconds."""
        _terminate(self.workers, grace)
        self.workers.clear()

    def stop(self, grace: float = 15.0) -> None:
        """Stop the workers, then the server; close the logs."""
        self.stop_workers(grace)
        if self.server is not None:
            _terminate([self.server], grace)
            self.server = None
        for log in self._logs:
            log.close()
        self._logs.clear()


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _terminate(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process and its children (uvicorn's workers, a trainer's pool)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
