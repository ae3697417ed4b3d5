"""GPU choice without a GPU: `cuda:N` checked against the visible GPUs and made current,
`--devices` expanded into one child worker per GPU, signals passed on, exit codes, and the
per-device `--max-batch` default. torch.cuda is monkeypatched; nothing touches real CUDA."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import torch
from typer.testing import CliRunner, Result

import workers.fleet
import workers.run
from studies.cli import build_app
from studies.protocol import MAX_LEASE_TRIALS
from workers.capabilities import WorkerCapabilities
from workers.device import describe_device, resolve_device, use_device, visible_gpus
from workers.fleet import Child, fleet_exit_code, parse_devices, plan_children, run_fleet
from workers.loop import WorkerStats

runner = CliRunner()


class FakeCuda:
    """torch.cuda's answers for `count` visible GPUs; records set_device calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
        self.current = 0
        self.set_calls: list[int] = []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "set_device", self.set_device)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: f"Fake GPU {i}")
        monkeypatch.setattr(
            torch.cuda,
            "get_device_properties",
            lambda i: SimpleNamespace(total_memory=int(79.1 * 2**30)),
        )

    def set_device(self, index: int) -> None:
        self.set_calls.append(index)
        self.current = index


def test_a_cuda_index_is_checked_against_the_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCuda(monkeypatch, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert visible_gpus() == 2
    with pytest.raises(ValueError) as error:
        resolve_device("cuda:3")
    assert str(error.value) == (
        "cuda:3 asked for, but only 2 GPUs are visible (CUDA_VISIBLE_DEVICES=4,5); "
        "use cuda:0 to cuda:1"
    )
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(ValueError, match=r"only 2 GPUs .*CUDA_VISIBLE_DEVICES unset"):
        resolve_device("cuda:2")


def test_cuda_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCuda(monkeypatch, 0)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(device)
    assert resolve_device(None) == torch.device("cpu") and visible_gpus() == 0


def test_use_device_makes_the_card_current(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = FakeCuda(monkeypatch, 2)
    assert use_device(torch.device("cuda:1")) == torch.device("cuda", 1)
    assert cuda.set_calls == [1]
    assert use_device(torch.device("cuda")) == torch.device("cuda", 1)  # the current one
    assert use_device(torch.device("cpu")) == torch.device("cpu")
    assert cuda.set_calls == [1]
    assert describe_device(torch.device("cuda:1")) == "cuda:1 Fake GPU 1 (79.1 GiB)"
    threads = torch.get_num_threads()
    assert describe_device(torch.device("cpu")) == f"cpu ({threads} thread" + (
        "s)" if threads != 1 else ")"
    )


@pytest.mark.parametrize(
    ("spec", "visible", "expected"),
    [("all", 3, [0, 1, 2]), ("0,2", 3, [0, 2]), (" 1 ", 2, [1]), ("cuda:1,0", 2, [1, 0])],
)
def test_devices_expand(spec: str, visible: int, expected: list[int]) -> None:
    assert parse_devices(spec, visible) == expected


@pytest.mark.parametrize(
    ("spec", "visible", "message"),
    [
        (
            "all",
            0,
            "--devices all, but no GPU is visible (CUDA_VISIBLE_DEVICES=); use --device cpu",
        ),
        ("0,2", 2, "GPU 2 asked for, but only 2 GPU(s) are visible (CUDA_VISIBLE_DEVICES=)"),
        ("0", 0, "GPU 0 asked for, but no GPU is visible"),
        ("0,0", 2, "GPU 0 is listed twice"),
        ("first", 2, "is not 'all' or a comma list of GPU indices like 0,2"),
        ("0,,1", 2, "comma list"),
        ("-1", 2, "comma list"),
    ],
)
def test_bad_devices_say_what_to_change(
    spec: str, visible: int, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ValueError) as error:
        parse_devices(spec, visible)
    assert message in str(error.value)


def test_each_child_gets_its_device_and_its_own_worker_id() -> None:
    children = plan_children([0, 2], ["--server", "http://h:1", "--once"], "box-7-abc")
    assert [child.device for child in children] == ["cuda:0", "cuda:2"]
    assert children[1].argv == [
        sys.executable,
        "-m",
        "studies",
        "worker",
        "--server",
        "http://h:1",
        "--once",
        "--device",
        "cuda:2",
        "--worker-id",
        "box-7-abc-cuda2",
    ]


#: A stand-in worker: writes its args, then exits with its code (-1: on a signal, writing the
#: signal's number and exiting as a worker does: 0, or 130 after SIGINT).
FAKE_WORKER = """
import os, signal, sys, time
device = sys.argv[sys.argv.index("--device") + 1]
index = int(device.split(":")[1])
out, code = sys.argv[1] + str(index), int(sys.argv[2].split(",")[index])
def stop(signum, frame):
    open(out + ".signal", "w").write(str(signum))
    sys.exit(130 if signum == signal.SIGINT else 0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
open(out + ".tmp", "w").write(" ".join(sys.argv[3:]) + "\\n" + os.environ.get("SEEN", ""))
os.rename(out + ".tmp", out)
if code >= 0:
    sys.exit(code)
while True:
    time.sleep(0.05)
"""


def fake_children(tmp_path: Path, codes: list[int]) -> list[Child]:
    """The fleet's children with a fake worker command, one per code."""
    codes_arg = ",".join(map(str, codes))
    command = [sys.executable, "-c", FAKE_WORKER, str(tmp_path / "child"), codes_arg]
    return plan_children(range(len(codes)), ["--once"], "w", command=command)


def test_the_fleet_waits_for_every_child_and_reports_a_failure(tmp_path: Path) -> None:
    children = fake_children(tmp_path, [0, 3])
    assert run_fleet(children, env={"SEEN": "token"}) == 3
    for i in (0, 1):
        argv, env = (tmp_path / f"child{i}").read_text().split("\n")
        assert argv == f"--once --device cuda:{i} --worker-id w-cuda{i}" and env == "token"
    assert all(child.process is not None and child.process.poll() is not None for child in children)
    assert run_fleet(fake_children(tmp_path, [0, 0])) == 0


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signals_reach_every_child(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    children = fake_children(tmp_path, [-1, -1])
    ready = [tmp_path / "child0", tmp_path / "child1"]

    def signal_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not all(path.exists() for path in ready) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), sig)

    before = signal.getsignal(sig)
    threading.Thread(target=signal_when_ready, daemon=True).start()
    assert run_fleet(children) == code
    assert [(tmp_path / f"child{i}.signal").read_text() for i in (0, 1)] == [str(int(sig))] * 2
    assert signal.getsignal(sig) is before, "the fleet restores the signal handlers"


def test_fleet_exit_codes() -> None:
    assert fleet_exit_code([0, 0], []) == 0
    assert fleet_exit_code([0, 2], []) == 2
    assert fleet_exit_code([-9, 0], []) == 137  # killed by SIGKILL
    assert fleet_exit_code([130, 130], [signal.SIGINT]) == 130
    assert fleet_exit_code([130, 1], [signal.SIGINT]) == 1
    assert fleet_exit_code([130], []) == 130


# -- the CLI --------------------------------------------------------------------------------


class FakeLoop:
    """WorkerLoop's stand-in: records what `avatune worker` built it with, leases nothing."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, client: Any, trainer: Any, *, prefetch: bool = True, **options: Any):
        self.worker_id = options.get("worker_id") or "fake"
        self.training = None
        self.signal = None
        self.trainer = trainer
        FakeLoop.made.append({"prefetch": prefetch, "trainer": trainer, **options})

    def install_signal_handlers(self) -> None:
        pass

    def run(self) -> WorkerStats:
        return WorkerStats()


@pytest.fixture
def numerics_restored() -> Iterator[None]:
    """What a CUDA worker sets for the whole process (torch.backends flags, cuBLAS's
    workspace variable) without one set before the test, as it was after."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    workspace = os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    yield
    matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    if workspace is not None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace


@pytest.fixture
def fake_loop(monkeypatch: pytest.MonkeyPatch, numerics_restored: None) -> list[dict[str, Any]]:
    """WorkerLoop faked; a CUDA worker's global settings undone after the test."""
    FakeLoop.made = []
    monkeypatch.setattr(workers.run, "WorkerLoop", FakeLoop)
    monkeypatch.setattr(WorkerCapabilities, "discover", classmethod(lambda cls: None))
    return FakeLoop.made


def worker(*args: str) -> Result:
    return runner.invoke(build_app(), ["worker", "--server", "http://127.0.0.1:9", *args])


@pytest.mark.parametrize(
    ("gpus", "args", "max_batch"),
    [
        (0, ["--device", "cpu"], 64),
        (0, [], 64),
        (2, ["--device", "cpu"], 64),
        (2, ["--device", "cuda:1"], MAX_LEASE_TRIALS),
        (2, [], MAX_LEASE_TRIALS),
        (2, ["--device", "cuda:1", "--max-batch", "8"], 8),
        (0, ["--max-batch", "100"], 100),
    ],
)
def test_max_batch_defaults_by_device(
    gpus: int,
    args: list[str],
    max_batch: int,
    fake_loop: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeCuda(monkeypatch, gpus)
    result = worker(*args)
    assert result.exit_code == 0, result.output
    (made,) = fake_loop
    assert made["max_batch"] == max_batch
    assert made["device"].startswith("cuda:" if max_batch != 64 and gpus else "cpu (")


def test_the_worker_trains_on_the_chosen_card(
    fake_loop: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cuda = FakeCuda(monkeypatch, 2)
    built: list[str | None] = []

    def fake_torch_trainer(device: str | None = None) -> Any:
        built.append(device)
        return lambda lease, progress: [torch.cuda.current_device()]

    monkeypatch.setattr(workers.run, "torch_trainer", fake_torch_trainer)
    torch.backends.cuda.matmul.allow_tf32 = True
    result = worker("--device", "cuda:1", "--no-prefetch", "--worker-id", "box-cuda1")
    assert result.exit_code == 0, result.output
    (made,) = fake_loop
    assert made["device"] == "cuda:1 Fake GPU 1 (79.1 GiB)" and built == ["cuda:1"]
    assert (made["prefetch"], made["worker_id"]) == (False, "box-cuda1")
    assert cuda.set_calls == [1]
    # the numerics policy is set before anything trains: fp32 matmuls, deterministic cuDNN
    assert not torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.deterministic
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    # a new thread starts on card 0: the trainer makes cuda:1 current on the training thread
    cuda.current = 0
    trained: list[int] = []
    thread = threading.Thread(target=lambda: trained.extend(made["trainer"](None, None)))
    thread.start()
    thread.join()
    assert trained == [1] and cuda.set_calls == [1, 1]


@pytest.mark.parametrize(
    ("gpus", "args", "message"),
    [
        (2, ["--device", "cuda:3"], "cuda:3 asked for, but only 2 GPUs are visible"),
        (0, ["--device", "cuda:0"], "CUDA is not available"),
        (0, ["--devices", "all"], "no GPU is visible"),
        (2, ["--devices", "0,5"], "GPU 5 asked for, but only 2 GPU(s) are visible"),
        (2, ["--devices", "0", "--device", "cuda:0"], "give --device or --devices, not both"),
        (2, ["--worker-id", "a b"], "use up to 100 letters"),
    ],
)
def test_bad_devices_exit_2_with_the_fix(
    gpus: int,
    args: list[str],
    message: str,
    fake_loop: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    FakeCuda(monkeypatch, gpus)
    result = worker(*args)
    output = " ".join((result.output + capfd.readouterr().err).replace("│", " ").split())
    assert result.exit_code == 2, output
    assert message in output and "Traceback" not in output
    assert not fake_loop


def test_devices_all_runs_one_child_per_visible_gpu(
    monkeypatch: pytest.MonkeyPatch, fake_loop: list[dict[str, Any]]
) -> None:
    FakeCuda(monkeypatch, 2)
    ran: list[tuple[list[Child], dict[str, str] | None]] = []

    def fake_run_fleet(children: list[Child], env: dict[str, str] | None = None) -> int:
        ran.append((children, env))
        return 3

    monkeypatch.setattr(workers.fleet, "run_fleet", fake_run_fleet)
    result = worker(
        "--devices", "all", "--token", "secret", "--max-batch", "512", "--worker-id", "box"
    )
    assert result.exit_code == 3, result.output
    ((children, env),) = ran
    assert env == {"AVATUNE_TOKEN": "secret"} and not fake_loop
    for index, child in enumerate(children):
        argv = child.argv
        assert argv[:4] == [sys.executable, "-m", "studies", "worker"]
        assert argv[argv.index("--device") + 1] == f"cuda:{index}"
        assert argv[argv.index("--worker-id") + 1] == f"box-cuda{index}"
        assert argv[argv.index("--server") + 1] == "http://127.0.0.1:9"
        assert argv[argv.index("--max-batch") + 1] == "512"
        assert "--quiet" in argv and "secret" not in argv and "--no-prefetch" not in argv
    assert len(children) == 2
