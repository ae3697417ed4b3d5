"""A fake trainer for worker tests: no torch, a smooth objective over log10 α and log10 ε.

`AVATUNE_FAKE_SECONDS` (default 0.02) is how long one lease "trains".
"""

from __future__ import annotations

import math
import os
import time

from studies.protocol import LeaseResponse
from workers.lease_training import Outcome, ProgressFn


def objective(alpha: float, eps: float) -> float:
    """A bowl with its minimum 1.0 at α = 1e-2, ε = 1e-6 (α and ε coupled a little)."""
    a, e = math.log10(alpha) + 2.0, math.log10(eps) + 6.0
    return 1.0 + a * a + 0.1 * e * e + 0.05 * a * e


def train(lease: LeaseResponse, progress: ProgressFn) -> list[Outcome]:
    """Sleep a little in ten progress steps, then return the objective of every trial."""
    seconds = float(os.environ.get("AVATUNE_FAKE_SECONDS", "0.02"))
    for step in range(10):
        time.sleep(seconds / 10)
        progress(step + 1, 10)
    return [
        Outcome(
            value=objective(t.alpha, t.eps),
            test_value=objective(t.alpha, t.eps) + 0.5,
            curve=[2.0, 1.5, 1.0],
            seconds=seconds,
        )
        for t in lease.trials
    ]
