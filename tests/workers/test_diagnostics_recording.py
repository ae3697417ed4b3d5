"""The trainer's opt-in mechanism diagnostics: when it records, what, and nothing when off."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from studies import protocol
from workers.diagnostics import DiagnosticsRecord, wire_diagnostics
from workers.tasks import get_task
from workers.trainer import TrialConfig, train

CONFIGS = [TrialConfig(0.1, 1e-8), TrialConfig(1.0, 1e-2), TrialConfig(10.0, 1.0, seed=1)]
MLP_LAYERS = ["W1", "b1", "W2", "b2", "W3", "b3"]


def test_records_at_every_nth_step_with_the_mlp_layers() -> None:
    results = train("mnist1d-mlp", "avagrad", CONFIGS, steps=10, diagnostics_every=4)
    for result in results:
        assert [r.step for r in result.diagnostics] == [4, 8]
        for record in result.diagnostics:
            assert list(record.shares) == MLP_LAYERS
            assert math.fsum(record.shares.values()) == pytest.approx(1.0)
            assert 0 <= record.zero_fraction <= 1 and record.gamma > 0


def test_recording_changes_nothing_and_off_records_nothing() -> None:
    on = train("mnist1d-mlp", "avagradw", CONFIGS, steps=12, diagnostics_every=5)
    off = train("mnist1d-mlp", "avagradw", CONFIGS, steps=12)
    for a, b in zip(on, off, strict=True):
        assert a.curve == b.curve and a.objective == b.objective
        assert [r.step for r in a.diagnostics] == [5, 10] and b.diagnostics == []


def test_delayed_adam_records_and_other_optimizers_do_not() -> None:
    delayed = train("mnist1d-mlp", "delayed_adam", CONFIGS[:1], steps=3, diagnostics_every=1)
    assert [r.step for r in delayed[0].diagnostics] == [1, 2, 3]
    first = delayed[0].diagnostics[0]  # before any step v = 0, so γ = ε
    assert first.zero_fraction == 1.0 and first.gamma == pytest.approx(CONFIGS[0].eps)
    for optimizer in ("adam", "sgd", "radam"):
        results = train("mnist1d-mlp", optimizer, CONFIGS[:1], steps=3, diagnostics_every=1)
        assert results[0].diagnostics == []


def test_a_diverging_config_records_only_finite_values() -> None:
    configs = [TrialConfig(1e9, 1e-8), TrialConfig(0.1, 0.1)]
    results = train("mnist1d-mlp", "avagrad", configs, steps=60, diagnostics_every=2)
    assert results[0].diverged and not results[1].diverged
    assert len(results[0].diagnostics) < 30 == len(results[1].diagnostics)
    for result in results:
        for r in result.diagnostics:
            assert all(math.isfinite(x) for x in (r.gamma, r.zero_fraction, *r.shares.values()))


def test_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="diagnostics_every must be >= 1"):
        train("mnist1d-mlp", "avagrad", CONFIGS, steps=2, diagnostics_every=0)


@pytest.mark.parametrize(
    ("task", "names"),
    [
        ("mnist1d-mlp", MLP_LAYERS),
        (
            "mnist1d-cnn",
            [f"conv{k}.{p}" for k in (1, 2, 3) for p in ("weight", "bias")]
            + ["linear.weight", "linear.bias"],
        ),
        (
            "charlm-lstm",
            [
                "embedding",
                "lstm.weight_ih",
                "lstm.weight_hh",
                "lstm.bias",
                "out.weight",
                "out.bias",
            ],
        ),
        ("eq11", ["p0"]),
    ],
)
def test_tasks_name_their_tensors(task: str, names: list[str]) -> None:
    """Segments cover each configuration's parameters exactly once, under the task's names."""
    model = get_task(task).build(0, 2, device=torch.device("cpu"), dtype=torch.float32)
    segments = model.segments()
    assert [s.name for s in segments] == names
    for k, p in enumerate(model.parameters):
        mine = sorted((s.start, s.stop) for s in segments if s.tensor == k)
        assert mine[0][0] == 0 and mine[-1][1] == p[0].numel()
        assert all(a[1] == b[0] for a, b in itertools.pairwise(mine))


def test_the_wire_form_is_bounded() -> None:
    """Too many records are thinned evenly (the last kept); too many names are lumped."""
    shares = {f"layer{k}": 1 / 80 for k in range(80)}
    records = [DiagnosticsRecord(s, 1.0, 0.0, shares) for s in range(1, 1001)]
    wire = wire_diagnostics([records, []])
    assert wire is not None and len(wire) == 2 and wire[1] == []
    kept = wire[0]
    assert len(kept) <= protocol.MAX_DIAGNOSTICS_RECORDS and kept[-1].step == 1000
    assert len(kept[0].shares) == protocol.MAX_DIAGNOSTICS_NAMES
    assert kept[0].shares["(other)"] == pytest.approx(17 / 80)
    values = sum(len(r.shares) + protocol.DIAGNOSTICS_RECORD_COST for r in kept)
    assert values <= protocol.MAX_DIAGNOSTICS_VALUES
    assert wire_diagnostics([[], []]) is None and wire_diagnostics(None) is None
