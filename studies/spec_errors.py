"""Readable spec errors: pydantic's and YAML's failures as lines a person can act on.

Each problem becomes a `SpecIssue`: where (``tuner.config``, ``optimizers[1].name``), what
is wrong, and the fix — "did you mean 'budget'?" for a misspelt field, the accepted form
for a value of the wrong shape. No pydantic documentation links.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

#: The accepted form of the spec's fields, by field name (shown on a shape error).
EXAMPLES: dict[str, str] = {
    "name": "name: my-study",
    "task": "task: mnist1d-mlp (or {name: mnist1d-mlp, config: {...}})",
    "optimizer": "optimizer: adam (or {name: adam, betas: [0.9, 0.999]})",
    "optimizers": "optimizers: [adam, avagrad]",
    "tuner": "tuner: tpe (or {name: tpe, seed: 0})",
    "space": "space: {grid: paper}, or {alphas: [...], epsilons: [...]}, "
    "or {alpha: {low, high}, eps: {low, high}}",
    "alpha": "alpha: {low: 1e-4, high: 1e-1}",
    "eps": "eps: {low: 1e-8, high: 1e-1}",
    "alphas": "alphas: [1e-3, 1e-2, 1e-1]",
    "epsilons": "epsilons: [1e-8, 1e-6, 1e-4]",
    "betas": "betas: [0.9, 0.999]",
    "fidelity": "fidelity: {steps: 1000, seeds: 2}",
    "budget": "budget: 50",
    "replay": "replay: {seeds: 100, deltas: [0.5, 1.0]}",
    "tuners": "tuners: [grid, random, tpe]",
    "deltas": "deltas: [0.5, 1.0]",
    "bootstrap": "bootstrap: {tables: 30, replays: 10}",
    "config": "config: {key: value}",
    "settings": "settings: {key: value}",
}
#: Examples of a nested `name`, by the field it names.
NAME_EXAMPLES: dict[str, str] = {
    "task": "name: mnist1d-mlp",
    "optimizer": "name: adam",
    "optimizers": "name: adam",
    "tuner": "name: tpe",
}
SHAPE_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type", "list_type"})
SHAPE_ERRORS |= {"tuple_type", "mapping_type"}
SCALAR = "a single value: a number, a string, true/false or null"


@dataclass(frozen=True)
class SpecIssue:
    """One problem of a spec: where (a dotted path, '' for the whole spec), what, the fix."""

    location: str
    message: str
    #: pydantic's own message, for API clients that match on it.
    original: str = ""
    #: `location` as the parts of pydantic's `loc` (union member tags dropped).
    path: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class SpecError(ValueError):
    """A spec that cannot be used; `str()` is one readable line per issue."""

    def __init__(self, source: str, issues: Sequence[SpecIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        lines = [f"{source}: {issue}" if source else str(issue) for issue in self.issues]
        super().__init__("\n".join(lines))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"did you mean 'x'?"`` for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def unknown_name(kind: str, name: str, known: Sequence[str]) -> str:
    """The message for an unknown task/optimizer/tuner name, with a suggestion."""
    hint = did_you_mean(name, known)
    return f"unknown {kind} {name!r}; {hint + ' ' if hint else ''}choose one of: {', '.join(known)}"


def _unwrap(annotation: Any) -> Any:
    """`annotation` without Annotated[...] and without a lone `| None`."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if _is_union(annotation):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@dataclass
class _Place:
    """Where an error's location leads inside a model."""

    path: list[str | int]
    annotation: Any
    #: pydantic's location went on past a union (into one member's tag): a scalar choice.
    union: bool = False


def _walk(model: type[BaseModel], loc: Sequence[str | int]) -> _Place:
    annotation: Any = model
    path: list[str | int] = []
    for part in loc:
        annotation = _unwrap(annotation)
        if _is_model(annotation) and isinstance(part, str):
            field = annotation.model_fields.get(part)
            path.append(part)
            annotation = field.annotation if field is not None else None
        elif get_origin(annotation) in (list, tuple) and isinstance(part, int):
            args = [a for a in get_args(annotation) if a is not Ellipsis]
            path.append(part)
            annotation = args[min(part, len(args) - 1)] if args else None
        elif get_origin(annotation) is dict:
            path.append(part)
            annotation = get_args(annotation)[1]
        elif _is_union(annotation):
            return _Place(path, annotation, union=True)
        else:
            path.append(part)
            annotation = None
    return _Place(path, _unwrap(annotation))


def dotted(path: Sequence[str | int]) -> str:
    """``("optimizers", 1, "name")`` as ``optimizers[1].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _example(path: Sequence[str | int]) -> str:
    """The accepted form at `path`: by its dotted names, else by its last one."""
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return ""
    if len(names) > 1 and names[-1] == "name":  # a nested name: its parent says which
        return NAME_EXAMPLES.get(names[-2], "")
    return EXAMPLES.get(names[-1], "")


def _shape(place: _Place, item: dict[str, Any]) -> str:
    target = place.annotation
    if _is_model(target):
        expected = "{" + ", ".join(target.model_fields) + "}"
    elif item["type"] == "list_type":
        expected = "a list"
    else:
        expected = "a mapping {key: value}"
    example = _example(place.path)
    return f"expected {expected}, e.g. {example}" if example else f"expected {expected}"


def _message(place: _Place, item: dict[str, Any], parent: Any) -> str:
    kind, msg = item["type"], str(item["msg"])
    if kind == "extra_forbidden":
        name = str(place.path[-1])
        fields = list(parent.model_fields) if _is_model(parent) else []
        hint = did_you_mean(name, fields)
        fix = hint or (f"remove it (the fields here: {', '.join(fields)})" if fields else "")
        return f"unknown field {name!r}" + (f"; {fix}" if fix else "")
    if kind == "missing":
        example = _example(place.path)
        return "required; add it" + (f", e.g. {example}" if example else "")
    if kind in SHAPE_ERRORS:
        return _shape(place, item)
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str((item.get("ctx") or {}).get("expected", "")))
        hint = did_you_mean(str(item.get("input")), expected)
        return msg + (f"; {hint}" if hint else "")
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def spec_issues(error: ValidationError, model: type[BaseModel]) -> list[SpecIssue]:
    """Readable issues of a failed validation of `model` (one per place, in order)."""
    return issues_at([dict(item) for item in error.errors()], model)


def issues_at(items: Sequence[dict[str, Any]], model: type[BaseModel]) -> list[SpecIssue]:
    """Readable issues for pydantic error dicts whose `loc` is relative to `model`."""
    issues: list[SpecIssue] = []
    unions: set[str] = set()
    for item in items:
        place = _walk(model, tuple(item["loc"]))
        location, path, original = dotted(place.path), tuple(place.path), str(item["msg"])
        if place.union:
            if location not in unions:
                unions.add(location)
                issues.append(SpecIssue(location, f"expected {SCALAR}", original, path))
            continue
        parent = _walk(model, tuple(item["loc"])[:-1]).annotation if item["loc"] else None
        issues.append(SpecIssue(location, _message(place, item, parent), original, path))
    return issues


def yaml_problem(error: yaml.YAMLError) -> str:
    """``line L column C: <problem>`` for a YAML syntax error, with a hint when one helps."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and start is not None and (mark is None or start.line != mark.line):
        problem += f" ({context} that starts on line {start.line + 1})"
    if "'\\t'" in problem:
        problem += "; indent with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        problem += "; check the indentation, or quote a value that contains ': '"
    return where + problem


def read_spec_data(path: str | Path) -> Any:
    """The parsed YAML (or JSON) of a spec file; SpecError on a missing file or bad syntax."""
    where = Path(path)
    try:
        text = where.read_text()
    except FileNotFoundError:
        raise SpecError(
            "", [SpecIssue("", f"no spec file {str(where)!r}; check the path")]
        ) from None
    except IsADirectoryError:
        raise SpecError("", [SpecIssue("", f"{where} is a folder; give a spec file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError("", [SpecIssue("", f"cannot read {where}: {error}")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(f"cannot read {where}", [SpecIssue("", yaml_problem(error))]) from None
