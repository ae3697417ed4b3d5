"""The paper's Eq. (11): Adam drifts to w = 1, Delayed Adam (β1 = 0) settles near w* = 499/999."""

from __future__ import annotations

import pytest

from optim.eq11 import W_STAR, run_eq11


@pytest.mark.slow
def test_adam_fails_and_delayed_adam_converges():
    # Reduced T with α = 0.01 (α_t = α/√t): at 2·10^4 steps the spread across seeds is
    # already well inside ±0.15 of w* for Delayed Adam, while Adam sits at the boundary.
    adam = run_eq11("adam", steps=20_000, seeds=32, lr=0.01)
    delayed = run_eq11("delayed_adam", steps=20_000, seeds=32, lr=0.01)
    assert adam.mean().item() > 0.9
    assert abs(delayed.mean().item() - W_STAR) < 0.15


def test_eq11_command_prints_both_optimizers():
    from typer.testing import CliRunner

    from studies.cli import build_app

    result = CliRunner().invoke(build_app(), ["optim", "eq11", "--steps", "2000", "--seeds", "4"])
    assert result.exit_code == 0, result.output
    assert "delayed_adam" in result.output and "adam" in result.output
    assert "0.4995" in result.output
