"""The create-study form: its fields and defaults, and the `StudySpec` they describe."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from service.dashboard.forms import Fields, FormErrors, errors_from, first, locator, split_values
from studies.plugin_names import plugin_names
from studies.specs import OPTIMIZERS, TASKS, TUNERS, StudySpec

SPACES = {
    "coarse": "the paper's coarse grid (11×11)",
    "paper": "the paper's grid (21×21)",
    "explicit": "an explicit grid (lists of α and ε)",
    "bounds": "log-scale bounds (α and ε intervals)",
}
TEXT_FIELDS = (
    "name",
    "task",
    "optimizer",
    "tuner",
    "tuner_seed",
    "space",
    "alphas",
    "epsilons",
    "alpha_low",
    "alpha_high",
    "eps_low",
    "eps_high",
    "budget",
    "steps",
    "seeds",
    "batch_size",
)
DEFAULTS = {
    "task": "mnist1d-mlp",
    "optimizer": "avagrad",
    "tuner": "grid",
    "space": "coarse",
    "alpha_low": "1e-5",
    "alpha_high": "10",
    "eps_low": "1e-8",
    "eps_high": "1",
    "seeds": "1",
}
LABELS = {
    "name": "Name",
    "task": "Task",
    "optimizer": "Optimizer",
    "tuner": "Tuner",
    "tuner_seed": "Tuner seed",
    "space": "Search space",
    "alphas": "α values",
    "epsilons": "ε values",
    "alpha_low": "α from",
    "alpha_high": "α to",
    "eps_low": "ε from",
    "eps_high": "ε to",
    "budget": "Budget",
    "steps": "Training steps",
    "seeds": "Seeds per trial",
    "batch_size": "Batch size",
    "token": "Server token",
}
#: The forms' lists: built-in names and the plugins installed where the server runs (an
#: import path goes through the API or the CLI).
CHOICES = {
    "tasks": TASKS + plugin_names("task"),
    "optimizers": OPTIMIZERS + plugin_names("optimizer"),
    "tuners": TUNERS,
    "spaces": SPACES,
}
_LOCATE = locator(
    {
        ("name",): "name",
        ("task",): "task",
        ("optimizer",): "optimizer",
        ("tuner",): "tuner",
        ("tuner", "seed"): "tuner_seed",
        ("space",): "space",
        ("space", "alphas"): "alphas",
        ("space", "epsilons"): "epsilons",
        ("space", "alpha"): "alpha_high",
        ("space", "alpha", "low"): "alpha_low",
        ("space", "eps"): "eps_high",
        ("space", "eps", "low"): "eps_low",
        ("budget",): "budget",
        ("fidelity", "steps"): "steps",
        ("fidelity", "seeds"): "seeds",
        ("fidelity", "batch_size"): "batch_size",
    }
)


def values(fields: Fields | None = None) -> dict[str, str]:
    """What the form shows: the posted values, or the defaults for a fresh form."""
    if fields is None:
        return {name: DEFAULTS.get(name, "") for name in TEXT_FIELDS}
    return {name: first(fields, name) for name in TEXT_FIELDS}


def _space(v: dict[str, str]) -> dict[str, Any]:
    kind = v["space"]
    if kind == "explicit":
        return {"alphas": split_values(v["alphas"]), "epsilons": split_values(v["epsilons"])}
    if kind == "bounds":
        return {
            "alpha": {"low": v["alpha_low"], "high": v["alpha_high"]},
            "eps": {"low": v["eps_low"], "high": v["eps_high"]},
        }
    return {"grid": kind}


def spec_data(v: dict[str, str]) -> dict[str, Any]:
    """The spec as JSON-like data (strings left for pydantic to convert and check)."""
    tuner: dict[str, Any] = {"name": v["tuner"]}
    if v["tuner_seed"]:
        tuner["seed"] = v["tuner_seed"]
    fidelity = {k: v[k] for k in ("steps", "seeds", "batch_size") if v[k]}
    data: dict[str, Any] = {
        "name": v["name"],
        "task": v["task"],
        "optimizer": v["optimizer"],
        "tuner": tuner,
        "space": _space(v),
        "fidelity": fidelity,
    }
    if v["budget"]:
        data["budget"] = v["budget"]
    return data


def validate(v: dict[str, str]) -> tuple[StudySpec | None, FormErrors]:
    """The study spec, or the errors to show next to the fields."""
    errors = FormErrors()
    if v["space"] not in SPACES:
        errors.add("space", f"choose one of: {', '.join(SPACES)}")
        return None, errors
    try:
        return StudySpec.model_validate(spec_data(v)), errors
    except ValidationError as error:
        return None, errors_from(error, _LOCATE)
