"""Layer rules: the server never imports torch, optim or workers; workers never import service."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _offenders(folder: str, pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if regex.match(line)
    ]


def test_service_sources_never_import_torch_optim_or_workers() -> None:
    assert _offenders("service", r"^\s*(import|from) (torch|optim|workers)\b") == []


def test_workers_never_import_service() -> None:
    assert _offenders("workers", r"^\s*(import|from) service\b") == []


def test_the_running_server_loads_no_torch() -> None:
    code = (
        "import sys; import service.app, service.cli, service.tuning, service.reports; "
        "from service.app import create_app; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'optim', 'workers')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_known_names_match_the_registries() -> None:
    """studies.specs keeps the names as constants (the server imports no torch): in sync."""
    from optim.registry import OPTIMIZERS as OPTIM_REGISTRY
    from studies.specs import EXTERNAL_TASK, OPTIMIZERS, TASKS, TUNERS
    from studies.tuners import TUNERS as TUNER_REGISTRY
    from workers.tasks import TASKS as TASK_REGISTRY

    assert set(OPTIMIZERS) == set(OPTIM_REGISTRY)
    assert set(TASKS) == set(TASK_REGISTRY) | {EXTERNAL_TASK}  # no worker runs external
    assert set(TUNERS) == set(TUNER_REGISTRY)
