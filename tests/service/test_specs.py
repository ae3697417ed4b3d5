"""The domain models: search spaces, specs and their messages, built-in specs, wire models."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from studies.grids import grid_values
from studies.protocol import LeaseRequest, TrialFailure, TrialResult
from studies.space import SearchSpace
from studies.specs import (
    OPTIMIZERS,
    ExperimentSpec,
    OptimizerRef,
    SpecError,
    StudySpec,
    builtin_spec,
    parse_spec,
    spec_from_data,
)

BASE = {"name": "s", "task": "mnist1d-mlp", "optimizer": "adam"}


def test_paper_grid_preset_and_point_mapping() -> None:
    space = SearchSpace(grid="paper")
    assert space.grid_shape == (21, 21) and space.size == 441
    alphas, epsilons = grid_values("paper")
    assert space.point({"i_alpha": 3, "j_eps": 20}) == (alphas[3], epsilons[20], 3, 20)
    assert SearchSpace(grid="coarse").grid_shape == (11, 11)


def test_bounds_map_log10_params_into_the_box() -> None:
    space = SearchSpace(alpha={"low": 1e-4, "high": 1.0}, eps={"low": 1e-8, "high": 1e-2})
    assert not space.is_grid and space.size is None
    alpha, eps, i, j = space.point({"log10_alpha": -2.0, "log10_eps": 0.5})
    assert alpha == pytest.approx(1e-2) and eps == 1e-2 and i is None and j is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "torch.optim:"}, "malformed import path 'torch.optim:'"),
        ({"optimizer": "torch optim:Adam"}, "write package.module:Class"),
        ({"task": "my task"}, "malformed task name 'my task'"),
        ({"optimizer": {"name": "adam", "eps_arg": None}}, "adam is built in and knows its ε"),
        (
            {"optimizer": {"name": "a.b:C", "settings": {"epsilon": 1}, "eps_arg": "epsilon"}},
            "may not set 'epsilon'",
        ),
        ({"tuner": "hyperband"}, "choose one of: grid, random"),
        ({"space": {"alphas": [1e-3, -1], "epsilons": [1]}}, "must be > 0"),
        ({"space": {"alphas": [math.nan], "epsilons": [1]}}, "finite"),
        (
            {
                "space": {"alpha": {"low": 1, "high": 0.1}, "eps": {"low": 1e-8, "high": 1}},
                "tuner": "tpe",
            },
            "swap them",
        ),
        ({"budget": 500}, "lower the budget"),
        ({"space": {"alphas": [1.0] * 2, "epsilons": [1.0]}}, "strictly increasing"),
        ({"optimizer": {"name": "sgd", "betas": [0.9, 0.99]}}, "sgd has no betas"),
        ({"optimizer": {"name": "adam", "settings": {"lr": 0.1}}}, "α and ε are tuned"),
    ],
)
def test_invalid_specs_say_what_to_change(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        StudySpec.model_validate(BASE | changes)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "imagenet"}, "task.name: unknown task 'imagenet'; choose one of: mnist1d-mlp"),
        ({"optimizer": "adamm"}, "optimizer.name: unknown optimizer 'adamm'; did you mean 'adam'?"),
        ({"optimizer": "lion"}, "or name a plugin's optimizer by import path package.module:Class"),
    ],
)
def test_a_submitted_spec_names_something_installed(changes: dict, message: str) -> None:
    """Plain names must be built in or a plugin installed here; the form alone is the
    model's check, so stored and leased specs that name a plugin still read."""
    with pytest.raises(SpecError) as error:
        spec_from_data(BASE | changes)
    assert message in str(error.value)
    assert StudySpec.model_validate(BASE | changes).name == "s"


def test_import_paths_and_eps_arg() -> None:
    spec = spec_from_data(BASE | {"optimizer": "torch.optim:NAdam"})
    assert isinstance(spec, StudySpec) and spec.searches_eps and spec.points == 441
    assert spec.optimizer.eps_arg == "eps" and not spec.optimizer.builtin
    plain = {"name": "torch.optim:Adamax", "eps_arg": None, "settings": {"eps": 1e-7}}
    line = StudySpec.model_validate(BASE | {"optimizer": plain})
    assert not line.searches_eps and line.points == 21  # an α line: ε is not searched
    assert line.optimizer.train_settings() == {"eps": 1e-7}
    task = spec_from_data(BASE | {"task": {"name": "pkg.tasks:Tiny", "config": {"width": 3}}})
    assert task.task.config == {"width": 3}  # a plugin task's options are its worker's to check
    external = spec_from_data(BASE | {"task": {"name": "external", "config": {"arch": "vit"}}})
    assert external.task.config == {"arch": "vit"}


def test_defaults_and_train_settings() -> None:
    spec = StudySpec.model_validate(BASE)
    assert spec.budget == 441 and spec.tuner.name == "grid" and spec.fidelity.seeds == 1
    assert StudySpec.model_validate(BASE | {"tuner": "tpe"}).budget == 50
    ref = OptimizerRef(name="adamw", betas=(0.9, 0.99), weight_decay=0.01, settings={"x": 1})
    assert ref.train_settings() == {"x": 1, "betas": (0.9, 0.99), "weight_decay": 0.01}


def test_builtin_specs() -> None:
    paper = builtin_spec("paper-mnist1d")
    assert isinstance(paper, ExperimentSpec)
    assert [o.name for o in paper.optimizers] == ["adam", "avagrad"]
    assert paper.space.grid == "paper" and paper.task.name == "mnist1d-mlp"
    assert paper.fidelity.seeds == 3
    every = builtin_spec("all-optimizers-mnist1d")
    assert isinstance(every, ExperimentSpec)
    assert tuple(o.name for o in every.optimizers) == OPTIMIZERS
    studies = {s.optimizer.name: s for s in every.study_specs()}
    adam_eps = studies["adam"].space.grid_axes()[1]
    adabelief_eps = studies["adabelief"].space.grid_axes()[1]
    assert adabelief_eps == pytest.approx([e * 1e-8 for e in adam_eps])
    decayed = builtin_spec("paper-mnist1d-l2")
    assert isinstance(decayed, ExperimentSpec) and decayed.space.grid == "paper"
    settings = {s.optimizer.name: s.optimizer.train_settings() for s in decayed.study_specs()}
    assert settings == {n: {"weight_decay": 2e-3} for n in ("adam", "avagrad")}
    assert decayed.fidelity.seeds == 3
    quick = builtin_spec("quick-mnist1d")
    assert isinstance(quick, ExperimentSpec) and quick.space.size == 121
    assert quick.fidelity.steps is not None and quick.fidelity.steps <= 500
    assert quick.fidelity.seeds == 1
    with pytest.raises(ValueError, match="choose one of"):
        builtin_spec("nope")


def test_parse_spec_dispatches_on_kind() -> None:
    assert isinstance(parse_spec(BASE), StudySpec)
    experiment = {"name": "e", "task": "eq11", "optimizers": ["adam"]}
    assert isinstance(parse_spec(experiment), ExperimentSpec)
    assert isinstance(parse_spec(experiment | {"kind": "experiment"}), ExperimentSpec)
    with pytest.raises(ValueError, match="kind"):
        parse_spec(BASE | {"kind": "report"})


def test_wire_models() -> None:
    with pytest.raises(ValidationError):
        TrialResult(token="t" * 32, value=math.inf)
    with pytest.raises(ValidationError):
        TrialResult(token="t" * 32, value=1.0, curve=[1.0] * 1001)
    with pytest.raises(ValidationError):
        LeaseRequest(worker_id="w", max_trials=5000)
    failure = TrialFailure(token="t" * 32, error="bad\x00byte")
    assert failure.error == "bad\ufffdbyte" and not failure.release
