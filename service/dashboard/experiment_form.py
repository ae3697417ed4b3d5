"""The create-experiment form: its fields and defaults, and the `ExperimentSpec` they describe."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from service.dashboard.forms import Fields, FormErrors, errors_from, first, locator, split_values
from studies.plugin_names import plugin_names
from studies.specs import OPTIMIZERS, TASKS, TUNERS, ExperimentSpec

SPACES = {
    "coarse": "the paper's coarse grid (11×11)",
    "paper": "the paper's grid (21×21)",
    "explicit": "an explicit grid (lists of α and ε)",
}
TEXT_FIELDS = (
    "name",
    "task",
    "space",
    "alphas",
    "epsilons",
    "steps",
    "seeds",
    "replay_seeds",
    "deltas",
)
LIST_FIELDS = ("optimizers", "replay_tuners")
DEFAULTS: dict[str, Any] = {
    "task": "mnist1d-mlp",
    "space": "coarse",
    "seeds": "1",
    "replay_seeds": "100",
    "deltas": "",  # empty: the task's δs (studies.objectives)
    "optimizers": ["adam", "avagrad"],
    "replay_tuners": list(TUNERS),
    "eps_shift": True,
}
LABELS = {
    "name": "Name",
    "task": "Task",
    "optimizers": "Optimizers",
    "space": "Grid",
    "alphas": "α values",
    "epsilons": "ε values",
    "steps": "Training steps",
    "seeds": "Seeds per trial",
    "replay_tuners": "Tuners replayed",
    "replay_seeds": "Seeded runs",
    "deltas": "δ targets",
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
        ("optimizers",): "optimizers",
        ("space",): "space",
        ("space", "alphas"): "alphas",
        ("space", "epsilons"): "epsilons",
        ("fidelity", "steps"): "steps",
        ("fidelity", "seeds"): "seeds",
        ("replay", "tuners"): "replay_tuners",
        ("replay", "seeds"): "replay_seeds",
        ("replay", "deltas"): "deltas",
    }
)


def values(fields: Fields | None = None) -> dict[str, Any]:
    """What the form shows: the posted values, or the defaults for a fresh form."""
    if fields is None:
        return {name: DEFAULTS.get(name, "") for name in (*TEXT_FIELDS, *LIST_FIELDS, "eps_shift")}
    out: dict[str, Any] = {name: first(fields, name) for name in TEXT_FIELDS}
    out.update({name: [v for v in fields.get(name, []) if v] for name in LIST_FIELDS})
    out["eps_shift"] = "eps_shift" in fields
    return out


def spec_data(v: dict[str, Any]) -> dict[str, Any]:
    """The spec as JSON-like data (strings left for pydantic to convert and check)."""
    space: dict[str, Any] = (
        {"alphas": split_values(v["alphas"]), "epsilons": split_values(v["epsilons"])}
        if v["space"] == "explicit"
        else {"grid": v["space"]}
    )
    replay: dict[str, Any] = {"tuners": v["replay_tuners"]}
    if split_values(v["deltas"]):
        replay["deltas"] = split_values(v["deltas"])
    if v["replay_seeds"]:
        replay["seeds"] = v["replay_seeds"]
    return {
        "name": v["name"],
        "task": v["task"],
        "optimizers": v["optimizers"],
        "space": space,
        "fidelity": {k: v[k] for k in ("steps", "seeds") if v[k]},
        "replay": replay,
        "eps_shift": v["eps_shift"],
    }


def validate(v: dict[str, Any]) -> tuple[ExperimentSpec | None, FormErrors]:
    """The experiment spec, or the errors to show next to the fields."""
    errors = FormErrors()
    if v["space"] not in SPACES:
        errors.add("space", f"choose one of: {', '.join(SPACES)}")
        return None, errors
    try:
        return ExperimentSpec.model_validate(spec_data(v)), errors
    except ValidationError as error:
        return None, errors_from(error, _LOCATE)
