"""What the client's create methods accept as a spec: a model, a mapping, or a file path.

Mappings and files are checked here, before any request, so a mistake reads as
`studies.spec_errors.SpecError` (a ValueError: one line per issue, with the fix); whether
a plain task or optimizer name names something installed is the server's to say (its
plugins may not be this machine's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from studies.specs import ExperimentSpec, Spec, StudySpec, spec_from_data, spec_from_file

#: A spec as the client takes it: a model, its mapping (as YAML/JSON parses), or a path to
#: a YAML or JSON file.
SpecInput = StudySpec | ExperimentSpec | Mapping[str, Any] | str | Path
S = TypeVar("S", StudySpec, ExperimentSpec)


class SpecKindError(ValueError):
    """A study spec given where an experiment's is expected, or the other way round."""


def as_spec(spec: SpecInput) -> Spec:
    """The study or experiment spec `spec` is (SpecError when invalid)."""
    if isinstance(spec, StudySpec | ExperimentSpec):
        return spec
    if isinstance(spec, BaseModel):
        raise TypeError(f"expected a StudySpec or ExperimentSpec, got {type(spec).__name__}")
    if isinstance(spec, str | Path):
        return spec_from_file(spec, names=False)
    if isinstance(spec, Mapping):
        return spec_from_data(dict(spec), names=False)
    raise TypeError(
        f"a spec is a StudySpec, an ExperimentSpec, a mapping or a file path, "
        f"got {type(spec).__name__}"
    )


def as_kind(spec: SpecInput, kind: type[S]) -> S:
    """`spec` as a spec of `kind`; SpecKindError naming the method that takes the other."""
    found = as_spec(spec)
    if isinstance(found, kind):
        return found
    other = "create_experiment" if isinstance(found, ExperimentSpec) else "create_study"
    what = "an experiment" if isinstance(found, ExperimentSpec) else "a study"
    raise SpecKindError(f"{found.name!r} is {what} spec: submit it with {other} (or create)")
