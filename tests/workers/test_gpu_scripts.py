"""The GPU check's scripts, on a CPU: they run once in a GPU session, so they must not rot.

benchmarks/gpu_bundle.sh bundles only pinned packages, and everything the worker tests
import; both shell scripts parse; gpu_check.py's quick CPU run prints its findings and one
JSON line, fails loudly (exit 1, FAIL lines) on out-of-memory splits, a `DoesNotFit` or a
section that raises, and refuses unknown sections; gpu_check.sh's throughput summary reads
grid_throughput.py's JSON line.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "benchmarks" / "gpu_bundle.sh"
CHECK_SH = ROOT / "benchmarks" / "gpu_check.sh"
CHECK_PY = ROOT / "benchmarks" / "gpu_check.py"

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402

from workers import trainer  # noqa: E402
from workers.graphed_step import WARMUP_STEPS  # noqa: E402
from workers.sizing import DoesNotFit  # noqa: E402
from workers.tasks import get_task  # noqa: E402


def bundled() -> list[str]:
    """The package names gpu_bundle.sh downloads wheels of."""
    found = re.search(r'^PACKAGES="([^"]*)"', BUNDLE.read_text(), re.MULTILINE)
    assert found, 'gpu_bundle.sh has no PACKAGES="..." list'
    return found.group(1).split()


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    """constraints.txt's name==version lines, by normalized name."""
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            found[normalized(name)] = version.strip()
    return found


def test_every_bundled_package_is_pinned_in_constraints() -> None:
    names = bundled()
    assert len(names) == len({normalized(n) for n in names}), "a package is listed twice"
    missing = [n for n in names if normalized(n) not in pins()]
    assert not missing, f"gpu_bundle.sh bundles unpinned packages: {missing}"
    assert "torch" not in {normalized(n) for n in names}, "the GPU machine brings its torch"


def test_the_bundle_pins_what_this_environment_tested() -> None:
    """The wheels the GPU machine gets are the versions the suite passed with here."""
    known = pins()
    drifted = {
        name: (known[normalized(name)], importlib.metadata.version(name))
        for name in bundled()
        if importlib.metadata.version(name) != known[normalized(name)]
    }
    assert not drifted, f"(pinned, installed) differ: {drifted}"


#: Distributions imported when present though nothing on Linux requires them.
OPTIONAL = {"colorama"}  # colorlog tries it (required on Windows only)
#: Where gpu_bundle.sh's wheels are installed: CPython 3.12 on x86-64 Linux.
GPU_MACHINE = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def suite_files() -> list[str]:
    """The test files gpu_check.sh's pytest run collects (directories expanded, the
    --ignore'd left out), with the conftest.py files above them."""
    command = re.search(r"-m pytest (.*?) 2>&1", CHECK_SH.read_text(), re.S)
    assert command, "gpu_check.sh runs no pytest"
    words = command.group(1).replace("\\\n", " ").split()
    ignored = {words[i + 1] for i, w in enumerate(words) if w == "--ignore"}
    targets = [
        w for i, w in enumerate(words) if w.startswith("tests/") and words[i - 1] != "--ignore"
    ]
    files = {"tests/conftest.py"}
    for target in targets:
        path = ROOT / target
        found = sorted(path.glob("*.py")) if path.is_dir() else [path]
        files |= {str(f.relative_to(ROOT)) for f in found}
        files |= {str(c.relative_to(ROOT)) for c in [path.parent / "conftest.py"] if c.exists()}
    return sorted(files - ignored)


#: Imports the given files and the check scripts, then prints the distributions loaded.
_IMPORTS = """
import importlib.util, json, sys
from importlib.metadata import packages_distributions
from pathlib import Path
root = Path(sys.argv[1]); sys.path[:0] = [str(root), str(root / "benchmarks")]
import gpu_check, grid_throughput, pytest, pytest_timeout
for index, name in enumerate(sys.argv[2:]):
    spec = importlib.util.spec_from_file_location(f"_scan_{index}", root / name)
    sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
owners = packages_distributions()
top = {m.split(".")[0] for m in list(sys.modules)}
print(json.dumps(sorted({d for m in top for d in owners.get(m, [])})))
"""


def _requirements(distribution: str) -> set[str]:
    """`distribution` and what it requires on the GPU machine (no extras), transitively,
    by normalized name."""
    from packaging.requirements import Requirement

    seen, todo = set(), [distribution]
    while todo:
        name = normalized(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for spec in map(Requirement, requires):
            if spec.marker is None or spec.marker.evaluate(GPU_MACHINE):
                todo.append(spec.name)
    return seen


def test_the_bundle_holds_what_its_packages_require() -> None:
    """Every requirement of a bundled package on Python 3.12 Linux is bundled too, or
    comes with torch."""
    provided = {normalized(n) for n in bundled()} | _requirements("torch")
    needed = set().union(*(_requirements(n) for n in bundled()))
    assert not needed - provided, f"required but not bundled: {sorted(needed - provided)}"


def test_the_suite_gpu_check_sh_runs_is_found() -> None:
    files = suite_files()
    assert "tests/workers/test_trainer.py" in files and "tests/optim/conftest.py" in files
    assert "tests/workers/test_grid_cli.py" not in files


@pytest.mark.slow
def test_the_bundle_holds_everything_the_worker_tests_import() -> None:
    """What gpu_check.sh's pytest run and the check scripts load comes from the bundle,
    or with the GPU machine's torch."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(ROOT), *suite_files()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = {normalized(d) for d in json.loads(done.stdout.splitlines()[-1])}
    provided = {normalized(n) for n in bundled()} | _requirements("torch") | {"avatune"}
    missing = loaded - provided - OPTIONAL
    assert not missing, f"loaded but not bundled (bundle them or --ignore the test): {missing}"


@pytest.mark.parametrize("script", [BUNDLE, CHECK_SH], ids=lambda p: p.name)
def test_the_shell_scripts_parse(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)


def test_the_paths_gpu_check_sh_names_exist() -> None:
    text = CHECK_SH.read_text()
    named = set(re.findall(r"\b((?:tests|benchmarks)/[\w/]+(?:\.py|\.sh)?)", text))
    assert {"tests/workers", "benchmarks/gpu_check.py", "benchmarks/grid_throughput.py"} <= named
    assert not [p for p in named if not (ROOT / p).exists()]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check")
def test_gpu_check_sh_says_so_without_cuda(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PY": sys.executable, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(CHECK_SH)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[setup] no CUDA device visible" in done.stdout


def _summary_script() -> str:
    """The Python gpu_check.sh feeds grid_throughput.py's JSON line to."""
    found = re.search(
        r"<<'EOF' \|\| failed\+=\(throughput\)\n(.*?)\nEOF\n", CHECK_SH.read_text(), re.S
    )
    assert found, "gpu_check.sh has no throughput summary"
    return found.group(1)


def _throughput(seconds: float, utilisation: float | None) -> dict:
    """A grid_throughput.py JSON line of a GPU run (the keys the summary reads)."""
    figures = {"grid_points": 441, "steps": 1000, "speedup": 120.0, "gemm_gflops": 50000.0}
    for optimizer in ("adam", "avagrad"):
        figures |= {
            f"grid_seconds_{optimizer}": seconds,
            f"launches_per_step_{optimizer}": 3.0,
            f"syncs_per_step_{optimizer}": 0.05,
            f"peak_mb_per_config_{optimizer}": 0.8,
        }
    model = None if utilisation is None else utilisation * figures["gemm_gflops"]
    return figures | {"flop_utilisation": utilisation, "model_gflops_per_s": model}


@pytest.mark.parametrize(
    ("seconds", "utilisation", "code", "fails"),
    [(1.5, 0.35, 0, 0), (2.5, 0.35, 1, 2), (1.5, 0.1, 1, 1), (1.5, None, 1, 1)],
)
def test_the_throughput_summary_checks_both_targets(
    seconds: float, utilisation: float | None, code: int, fails: int
) -> None:
    line = json.dumps(_throughput(seconds, utilisation))
    done = subprocess.run(
        [sys.executable, "-", line], input=_summary_script(), capture_output=True, text=True
    )
    assert done.returncode == code, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(x.startswith("[throughput] ") for x in lines)
    assert sum("FAIL:" in x for x in lines) == fails
    assert "target ≤ 2 s" in lines[0] and "target ≥ 30 %" in lines[2]


def _strict_json(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_quick_cpu_run_of_composition_and_isolation() -> None:
    done = subprocess.run(
        [sys.executable, str(CHECK_PY), "--device", "cpu", "--quick", "composition", "isolation"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    for optimizer in ("adam", "avagrad"):
        assert any(x.startswith(f"[composition] ok: {optimizer}:") for x in lines), lines
    for optimizer in ("sgd", "adam", "avagrad"):
        assert any(x.startswith(f"[isolation] ok: {optimizer}:") for x in lines), lines
    assert not [x for x in lines if "FAIL" in x]
    assert lines[-2].startswith("[summary] every target met")
    figures = _strict_json(lines[-1])
    assert figures["device"] == "cpu" and figures["failures"] == []
    assert figures["composition.adam_max_rel"] == 0.0  # bitwise on a CPU
    assert figures["isolation.avagrad_flags_ok"] is True
    assert {"composition.seconds", "isolation.seconds"} <= figures.keys()


def test_an_unknown_section_exits_2_naming_the_known_ones(capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        gpu_check.main(["--device", "cpu", "composition", "throughput"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "unknown section 'throughput'" in error
    assert all(name in error for name in gpu_check.SECTIONS)


def test_a_section_that_raises_fails_the_run_and_the_others_still_run(monkeypatch, capsys) -> None:
    def boom(report, device, scale, data) -> None:
        raise RuntimeError("CUDA error: an illegal memory access\nsecond line")

    def fine(report, device, scale, data) -> None:
        report.line("fine", "all well", ok=True, figure=float("nan"))

    monkeypatch.setitem(gpu_check.SECTIONS, "boom", boom)
    monkeypatch.setitem(gpu_check.SECTIONS, "fine", fine)
    assert gpu_check.main(["--device", "cpu", "--quick", "boom", "fine"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert "[boom] FAIL: raised RuntimeError: CUDA error: an illegal memory access" in lines
    assert "[fine] ok: all well" in lines
    assert lines[-2] == "[summary] 1 failed (boom, fine)"
    figures = _strict_json(lines[-1])
    assert figures["fine.figure"] is None and "boom.seconds" in figures
    assert figures["failures"] == [
        "boom: raised RuntimeError: CUDA error: an illegal memory access"
    ]


def _mlp_only(monkeypatch, configs: int = 4) -> None:
    mlp = get_task("mnist1d-mlp")
    monkeypatch.setattr(gpu_check, "memory_tasks", lambda scale, data: [("mlp", mlp, configs)])


def test_memory_trains_a_job_at_sizing_size_without_splits(monkeypatch, tmp_path, capsys) -> None:
    _mlp_only(monkeypatch)
    report = gpu_check.Report()
    gpu_check.memory(report, "cpu", gpu_check.Scale.quick(), tmp_path)
    assert not report.failures
    assert report.figures["memory.mlp_job_size"] == trainer.CPU_MAX_BATCH
    assert report.figures["memory.mlp_job_trained"] == gpu_check.Scale.quick().job_cap
    assert report.figures["memory.mlp_oom_splits"] == 0
    assert "[memory] ok: mlp: a job of 8 configurations" in capsys.readouterr().out


def test_memory_counts_out_of_memory_splits_as_failures(monkeypatch, tmp_path, capsys) -> None:
    """A job of 8 that runs out of memory above 2 configurations: 8 → 4+4 → 2+2+2+2."""
    real = trainer._train_job

    def small_memory(run, job, tick):
        if len(job.members) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(run, job, tick)

    _mlp_only(monkeypatch, configs=2)
    monkeypatch.setattr(trainer, "_train_job", small_memory)
    report = gpu_check.Report()
    gpu_check.memory(report, "cpu", gpu_check.Scale.quick(), tmp_path)
    assert report.figures["memory.mlp_oom_splits"] == 3
    assert len(report.failures) == 1
    out = capsys.readouterr().out
    assert "[memory] FAIL: mlp: a job of 8 configurations" in out
    assert "3 out-of-memory splits (expect 0)" in out


def test_memory_reports_does_not_fit_as_a_failure(monkeypatch, tmp_path, capsys) -> None:
    def too_big(*args, **kwargs) -> int:
        raise DoesNotFit("one configuration of mlp needs about 9000 MiB and 800 MiB may be used")

    _mlp_only(monkeypatch, configs=1)
    monkeypatch.setattr(gpu_check, "job_size", too_big)
    report = gpu_check.Report()
    gpu_check.memory(report, "cpu", gpu_check.Scale.quick(), tmp_path)
    assert report.figures["memory.mlp_job_size"] is None
    assert report.failures == [
        "memory: mlp: does not fit: one configuration of mlp needs about 9000 MiB and "
        "800 MiB may be used"
    ]
    assert "[memory] FAIL: mlp: does not fit" in capsys.readouterr().out


def test_the_gpu_scale_trains_sizing_jobs_past_the_graph_capture() -> None:
    """The job at sizing's size runs a captured graph's replay (its pool counted), uncapped;
    every quick size is at most the GPU run's."""
    full, quick = gpu_check.Scale(), gpu_check.Scale.quick()
    assert full.job_steps >= WARMUP_STEPS + 2 and full.job_cap is None
    for name, value in dataclasses.asdict(quick).items():
        if value is not None and getattr(full, name) is not None:
            assert value <= getattr(full, name), name


def test_gpu_check_sh_passes_options_the_scripts_accept() -> None:
    text = CHECK_SH.read_text()
    assert "benchmarks/gpu_check.py --device cuda" in text
    assert "benchmarks/grid_throughput.py --device cuda --sequential 5" in text
    for option in ("--device", "--sequential"):
        assert option in (ROOT / "benchmarks" / "grid_throughput.py").read_text()
