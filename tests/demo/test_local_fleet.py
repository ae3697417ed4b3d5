"""The demo counts GPUs as CUDA will show them to its workers: CUDA_VISIBLE_DEVICES decides
when set, checked against a (fake) `nvidia-smi -L`; one `--device cuda:i` worker per GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import service.local_fleet
from service.local_fleet import LocalFleet, default_devices, gpu_count

LISTING = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa1111-0000-0000-0000-000000000000)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb2222-0000-0000-0000-000000000000)
  MIG 3g.40gb     Device  0: (UUID: MIG-cccc3333-0000-0000-0000-000000000000)
GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-dddd4444-0000-0000-0000-000000000000)
"""


@pytest.fixture
def nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `nvidia-smi` first on PATH, listing three GPUs (one with a MIG instance)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "listing.txt").write_text(LISTING)
    script = bin_dir / "nvidia-smi"
    script.write_text(f'#!/bin/sh\n[ "$1" = "-L" ] || exit 9\ncat "{bin_dir / "listing.txt"}"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return script


def test_without_nvidia_smi_or_a_list_there_is_no_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_count() == 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # nothing to check it against: trusted
    assert gpu_count() == 2


def test_nvidia_smi_counts_gpus_not_mig_instances(nvidia_smi: Path) -> None:
    assert gpu_count() == 3
    assert default_devices() == ["cuda:0", "cuda:1", "cuda:2"]
    assert default_devices(4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]


@pytest.mark.parametrize(
    ("visible", "count"),
    [
        ("", 0),
        ("-1", 0),
        ("1", 1),
        ("2,0", 2),
        ("0, 1 ,2", 3),
        ("0,7,1", 1),  # CUDA stops at the first entry that names no device
        ("0,0", 1),
        ("GPU-bbbb2222", 1),  # a UUID prefix
        ("GPU-bbbb2222-0000-0000-0000-000000000000,GPU-aaaa", 2),
        ("GPU-ffff", 0),
        ("MIG-cccc3333", 1),
        ("GPU-", 0),  # ambiguous: matches every GPU
        ("nonsense,0", 0),
    ],
)
def test_cuda_visible_devices_decides(
    nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch, visible: str, count: int
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert gpu_count() == count
    if count:
        assert default_devices() == [f"cuda:{i}" for i in range(count)]
    else:
        assert all(device == "cpu" for device in default_devices())


def test_a_failing_nvidia_smi_means_no_gpu(
    nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvidia_smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert gpu_count() == 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert gpu_count() == 0


def test_the_demo_starts_one_worker_per_visible_gpu(
    nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    devices = default_devices()  # before Popen is faked: nvidia-smi runs through it
    started: list[tuple[list[str], dict[str, str]]] = []
    popen = subprocess.Popen

    def fake_popen(args: list[str], **options: object) -> subprocess.Popen[bytes]:
        env = options["env"]
        assert isinstance(env, dict)
        started.append((args, env))
        return popen([sys.executable, "-c", "pass"])

    monkeypatch.setattr(service.local_fleet.subprocess, "Popen", fake_popen)
    fleet = LocalFleet(tmp_path / "logs")
    fleet.start_workers("http://127.0.0.1:9", devices, {"AVATUNE_DATA_DIR": "d"})
    fleet.stop(grace=5)
    assert [args[args.index("--device") + 1] for args, _ in started] == ["cuda:0", "cuda:1"]
    for args, env in started:
        assert args[:4] == [sys.executable, "-m", "studies", "worker"]
        assert env["CUDA_VISIBLE_DEVICES"] == "2,0", "the workers see the same GPUs"
        # CPU workers split the cores with OMP_NUM_THREADS; a GPU worker's env is left as is
        assert env.get("OMP_NUM_THREADS") == os.environ.get("OMP_NUM_THREADS")
