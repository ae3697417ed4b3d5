"""Readable spec errors (studies.spec_errors) and server URLs (studies.server_url)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studies.server_url import is_route_miss, not_avatune_message, server_url, unreachable_message
from studies.spec_errors import SpecError, did_you_mean, unknown_name
from studies.specs import parse_spec, spec_from_data, spec_from_file

BASE: dict[str, Any] = {
    "name": "s",
    "task": "mnist1d-mlp",
    "optimizer": "adam",
    "space": {"grid": "coarse"},
}
BOUNDS = {"eps": {"low": 1e-8, "high": 1}}


def issues(data: Any) -> list[str]:
    with pytest.raises(SpecError) as error:
        spec_from_data(data)
    return [str(issue) for issue in error.value.issues]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"budjet": 3}, "budjet: unknown field 'budjet'; did you mean 'budget'?"),
        (
            {"tuner": {"name": "tpe", "confg": {}}},
            "tuner.confg: unknown field 'confg'; did you mean",
        ),
        ({"fidelity": {"step": 3}}, "fidelity.step: unknown field 'step'; did you mean 'steps'?"),
        ({"colour": "red"}, "colour: unknown field 'colour'; remove it (the fields here: kind,"),
        (
            {"tuner": "tpe", "space": {"alpha": [1, 0.001], **BOUNDS}},
            "space.alpha: expected {low, high}, e.g. alpha: {low: 1e-4, high: 1e-1}",
        ),
        ({"space": {"alphas": 3, "epsilons": [1.0]}}, "space.alphas: expected a list, e.g."),
        (
            {"optimizer": 3},
            "optimizer: expected {name, eps_arg, betas, weight_decay, settings}, e.g.",
        ),
        ({"optimizer": "adm"}, "optimizer.name: unknown optimizer 'adm'; did you mean 'adam'?"),
        ({"task": "mnist1d-mpl"}, "did you mean 'mnist1d-mlp'?"),
        ({"tuner": {"name": "tpe", "config": {"x": [1]}}}, "tuner.config.x: expected a single"),
        ({"space": {"grid": "papr"}}, "space.grid: Input should be 'paper' or 'coarse'; did you"),
        ({"optimizer": {"name": "adam", "betas": [0.9, 1.5]}}, "optimizer.betas[1]: betas must"),
        ({"kind": "experment"}, "unknown spec kind 'experment'; did you mean 'experiment'?"),
    ],
)
def test_each_issue_says_where_and_the_fix(changes: dict[str, Any], expected: str) -> None:
    found = issues(BASE | changes)
    assert any(expected in line for line in found), found
    assert not any("pydantic.dev" in line or "Value error," in line for line in found)


def test_a_union_error_is_one_issue_not_one_per_member_type() -> None:
    found = issues(BASE | {"tuner": {"name": "tpe", "config": {"x": [1]}}})
    assert found == [
        "tuner.config.x: expected a single value: a number, a string, true/false or null"
    ]


def test_missing_fields_and_list_positions() -> None:
    assert issues({"task": "mnist1d-mlp"}) == [
        "name: required; add it, e.g. name: my-study",
        "optimizer: required; add it, e.g. optimizer: adam (or {name: adam, betas: [0.9, 0.999]})",
    ]
    experiment = {"name": "e", "task": "mnist1d-mlp", "optimizers": ["adam", {"nme": "x"}]}
    assert issues(experiment) == [
        "optimizers[1].name: required; add it, e.g. name: adam",
        "optimizers[1].nme: unknown field 'nme'; did you mean 'name'?",
    ]


def test_parse_spec_still_raises_pydantics_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        parse_spec(BASE | {"budjet": 3})


def test_spec_files(tmp_path: Path) -> None:
    broken = tmp_path / "bad.yaml"
    broken.write_text("name: s\ntask: mnist1d-mlp\noptimizer: {name: adam\n")
    with pytest.raises(SpecError) as error:
        spec_from_file(broken)
    assert str(error.value) == (
        f"cannot read {broken}: line 4 column 1: expected ',' or '}}', but got '<stream end>' "
        "(while parsing a flow mapping that starts on line 3)"
    )
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("name: s\n\ttask: x\n")
    with pytest.raises(SpecError, match=r"line 2 column 1: .*indent with spaces, not tabs"):
        spec_from_file(tabs)
    with pytest.raises(SpecError, match=r"no spec file .*missing\.yaml'; check the path"):
        spec_from_file(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="is a folder"):
        spec_from_file(tmp_path)
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: s\ntask: mnist1d-mlp\noptimizer: adam\nbudjet: 3\n")
    with pytest.raises(SpecError) as error:
        spec_from_file(typo)
    assert str(error.value) == f"{typo}: budjet: unknown field 'budjet'; did you mean 'budget'?"
    good = tmp_path / "good.yaml"
    good.write_text("name: s\ntask: mnist1d-mlp\noptimizer: adam\nspace: {grid: coarse}\n")
    assert spec_from_file(good).name == "s"


def test_suggestions() -> None:
    assert did_you_mean("budjet", ["budget", "name"]) == "did you mean 'budget'?"
    assert did_you_mean("zzz", ["budget", "name"]) == ""
    assert unknown_name("optimizer", "lion", ("adam", "sgd")) == (
        "unknown optimizer 'lion'; choose one of: adam, sgd"
    )
    assert unknown_name("optimizer", "adamm", ("adam", "sgd")).startswith(
        "unknown optimizer 'adamm'; did you mean 'adam'? choose"
    )


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("http://127.0.0.1:8792", "http://127.0.0.1:8792"),
        ("http://127.0.0.1:8792/", "http://127.0.0.1:8792"),
        (" https://tune.example.org ", "https://tune.example.org"),
        ("HTTP://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_server_urls_are_normalised(text: str, url: str) -> None:
    assert server_url(text) == url


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("127.0.0.1:8792", "add the scheme: http://127.0.0.1:8792"),
        ("myhost/api", "add the scheme and drop the path: http://myhost"),
        ("http://host:8000/api", "drop the path /api from 'http://host:8000/api': the server URL"),
        ("http://host:8000/api", "is http://host:8000"),
        ("ftp://host:1", "use http or https: http://host:1"),
        ("http://host:99999", "give a number 1-65535"),
        ("http://:8000", "has no host"),
        ("http://host:8000?x=1", "drop the query"),
        ("", "is empty"),
    ],
)
def test_bad_server_urls_say_the_fix(text: str, fix: str) -> None:
    with pytest.raises(ValueError) as error:
        server_url(text)
    assert fix in str(error.value)


def test_server_messages() -> None:
    assert "`avatune serve --port 8792`" in unreachable_message("http://h:8792", "refused")
    assert "`avatune serve --port 80`" in unreachable_message("http://h", "refused")
    assert "not an avatune server" in not_avatune_message("http://h:1", "/api/leases", 404)
    assert is_route_miss(404, "Not Found") and is_route_miss(501, None)
    assert not is_route_miss(404, "study 9 not found") and not is_route_miss(409, None)
