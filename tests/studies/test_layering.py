"""studies/ never imports torch, service or workers."""

from __future__ import annotations

import subprocess
import sys


def test_analysis_modules_import_without_torch_service_or_workers() -> None:
    code = (
        "import sys, studies.tuners, studies.tuners.tabular, studies.replay, "
        "studies.separability, studies.figures, studies.report, studies.analysis_cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'service', 'workers')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
