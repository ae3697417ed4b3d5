"""Domain errors raised by repositories and leases; the app maps them to HTTP statuses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from studies.spec_errors import SCALAR, issues_at


class ServiceError(Exception):
    """A request the service refuses, with a message saying why and what to do."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """The addressed study, trial or experiment does not exist (404)."""

    status_code = 404


class Conflict(ServiceError):
    """The request does not fit the current state, e.g. a late or repeated report (409)."""

    status_code = 409


class Unavailable(ServiceError):
    """Something the request needs failed on the server's side; retrying may help (503)."""

    status_code = 503


class Invalid(ServiceError):
    """Input that passed the schema but not the domain's rules (422)."""

    status_code = 422


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats spelled as strings (e.g. echoed bad input)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def readable_detail(errors: Sequence[dict[str, Any]], body: type[BaseModel] | None) -> list[Any]:
    """A 422's `detail` list: FastAPI's items (loc, msg, type, input, ctx), no docs URLs, and
    for errors in a `body` model a `msg` that says the fix (pydantic's own in parentheses)."""
    detail: list[Any] = []
    unions: set[tuple[Any, ...]] = set()
    for error in errors:
        item = {key: value for key, value in error.items() if key != "url"}
        loc = tuple(item.get("loc", ()))
        if body is not None and loc[:1] == ("body",) and "type" in item:
            [issue] = issues_at([{**item, "loc": loc[1:]}], body)
            union = issue.message == f"expected {SCALAR}"
            if union:  # one item per union, not one per member type
                if issue.path in unions:
                    continue
                unions.add(issue.path)
            original = issue.original.removeprefix("Value error, ")
            item["loc"] = ["body", *issue.path]
            same = union or original in issue.message
            item["msg"] = issue.message if same else f"{issue.message} ({original})"
        detail.append(item)
    return detail


def body_model(route: Any) -> type[BaseModel] | None:
    """The pydantic model a FastAPI route takes as its (single, not embedded) JSON body."""
    field = getattr(route, "body_field", None)
    if field is None or getattr(route, "_embed_body_fields", False):
        return None
    annotation = getattr(field.field_info, "annotation", None)
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None
