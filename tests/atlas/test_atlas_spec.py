"""The atlas protocol file: what it expands into, what it refuses, and its hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from studies.atlas_spec import ATLAS_SPEC, AtlasSpec, load_atlas, spec_hash
from studies.spec_errors import SpecError
from studies.specs import OPTIMIZERS

TINY = Path(__file__).with_name("tiny-atlas.yaml")
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "atlas" / "metrics.json"


def test_committed_spec_covers_the_protocol() -> None:
    spec = load_atlas(ATLAS_SPEC)
    assert sorted(spec.optimizers) == sorted(OPTIMIZERS)
    assert [t.name for t in spec.tasks] == ["mnist1d-mlp", "mnist1d-resnet", "charlm-lstm"]
    assert spec.headline.optimizers == ["adam", "avagrad"]
    assert spec.headline.label == "21×21" and spec.others.label == "11×11"
    assert spec.seeds == 3 and spec.weight_decay == 5e-4


def test_experiments_per_task_and_weight_decay() -> None:
    spec = load_atlas(TINY)
    plans = spec.experiments()
    roles = [(p.task, p.role) for p in plans]
    assert roles == [
        ("mnist1d-mlp", "headline"),
        ("mnist1d-mlp", "others"),
        ("mnist1d-mlp", "avagrad-wd0"),
        ("mnist1d-resnet", "headline"),
        ("mnist1d-resnet", "others"),
        ("charlm-lstm", "headline"),
        ("charlm-lstm", "others"),
    ]
    for plan in plans:
        decays = {o.weight_decay for o in plan.spec.optimizers}
        assert decays == ({0.0} if plan.role == "avagrad-wd0" else {5e-4})
        assert plan.spec.fidelity.seeds == 2
        diagnosed = plan.task == "mnist1d-mlp"
        assert (plan.spec.fidelity.diagnostics_every is not None) == diagnosed
    resnet = next(p for p in plans if p.task == "mnist1d-resnet")
    assert resnet.spec.task.config == {"channels": 4, "blocks": 1}
    assert resnet.spec.fidelity.steps == 8 and resnet.spec.fidelity.batch_size == 32


def _tiny_data() -> dict:
    return yaml.safe_load(TINY.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["others"]["optimizers"].append("adam"), "headline or the others"),
        (lambda d: d["tasks"].append(dict(d["tasks"][0])), "each task may appear once"),
        (
            lambda d: d["others"]["space"].update(alphas=[5.0e-3]),
            "subgrid of the headline",
        ),
        (lambda d: d["diagnostics"]["tasks"].append("eq11"), "diagnostics name tasks"),
        (lambda d: d.update(weight_decay=-1), "weight_decay"),
    ],
)
def test_bad_protocols_are_refused_with_the_reason(tmp_path: Path, change, message: str) -> None:
    data = _tiny_data()
    change(data)
    path = tmp_path / "atlas.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=message):
        load_atlas(path)


def test_hash_ignores_comments_and_layout_but_not_content(tmp_path: Path) -> None:
    spec = load_atlas(TINY)
    reformatted = tmp_path / "same.yaml"
    reformatted.write_text("# another comment\n" + json.dumps(_tiny_data(), indent=3))
    assert spec_hash(load_atlas(reformatted)) == spec_hash(spec)
    data = _tiny_data()
    data["seeds"] = 3
    assert spec_hash(AtlasSpec.model_validate(data)) != spec_hash(spec)


def test_committed_results_claim_the_committed_spec() -> None:
    """docs/results/atlas was produced under studies/specs/atlas.yaml as committed: change
    the protocol and this fails until the atlas is run again."""
    if not RESULTS.is_file():
        pytest.skip("docs/results/atlas/metrics.json is not committed yet (the atlas has not run)")
    metrics = json.loads(RESULTS.read_text())
    assert metrics["spec_hash"] == spec_hash(load_atlas(ATLAS_SPEC)), (
        "studies/specs/atlas.yaml changed after docs/results/atlas was produced: run "
        "`avatune atlas` again (or restore the spec)"
    )
