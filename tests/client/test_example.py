"""examples/user_loop.py end to end with a tiny budget: a plain PyTorch loop tuned by CGLD
through `run_trials`; and avatune.client's layering (no torch, server or worker imports)."""

from __future__ import annotations

import subprocess
import sys

from avatune.client import Client
from tests.service.helpers import ROOT, ThreadServer, _env, app_for


def test_the_user_loop_example_tunes_a_pytorch_loop(sqlite_url: str) -> None:
    with ThreadServer(app_for(sqlite_url)) as server:
        args = ["--server", server.url, "--budget", "3", "--steps", "20"]
        done = subprocess.run(
            [sys.executable, "examples/user_loop.py", *args],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        with Client(server.url) as client:
            [study] = client.studies()
            trials = client.study_trials(study, curves=True)
    assert "3 trainings reported, 0 failed (study done)" in done.stdout
    assert "best: validation error" in done.stdout and "Traceback" not in done.stderr
    assert study.state == "done" and study.tuner == "cgld" and study.task == "external"
    assert study.best is not None and f"{study.best.value:.2f} %" in done.stdout
    assert len(trials) == 3 and all(t.curve and 0 <= (t.value or -1) <= 90 for t in trials)


def test_the_client_imports_no_torch_server_workers_or_pandas() -> None:
    code = (
        "import sys, avatune.client\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "bad = top & {'torch', 'service', 'workers', 'optim', 'pandas'}\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True)
