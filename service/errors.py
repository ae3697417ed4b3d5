"""Domain errors raised by repositories and leases; the app maps them to HTTP statuses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi.encoders import jsonable_encoder
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


#: The answer to a request that nests too deeply to process (e.g. 5000 levels of JSON).
TOO_DEEP = (
    "the request nests too deeply to process (JSON bodies here need only a few levels); flatten it"
)
#: The answer to text that no UTF-8 can hold, e.g. a lone surrogate sent as JSON's "\ud800".
NOT_UNICODE = (
    "the request holds text that is not valid Unicode (a lone surrogate, e.g. \\ud800, "
    "which UTF-8 cannot encode): send only whole characters"
)
#: Levels of nesting an error echoes of its input; deeper values are summarised.
MAX_ECHO_DEPTH = 12
DEEP = f"(nested deeper than {MAX_ECHO_DEPTH} levels, not echoed)"


def safe_text(text: str) -> str:
    """`text` encodable as UTF-8: lone surrogates (e.g. JSON's "\\ud800") spelled as escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` (e.g. echoed bad input) as JSON-serialisable data: non-finite floats and other
    objects spelled as strings, text made UTF-8-encodable, nesting cut at `MAX_ECHO_DEPTH`."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bytes):
        return safe_text(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, dict | list | tuple) and depth >= MAX_ECHO_DEPTH:
        return DEEP
    if isinstance(value, dict):
        return {safe_text(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, BaseException):  # e.g. the ValueError in a pydantic error's ctx
        return safe_text(str(value))
    try:
        return json_safe(jsonable_encoder(value), depth + 1)
    except Exception:  # an echo must never fail: its text will do
        return safe_text(str(value))


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
        if item.get("type") == "string_unicode":  # pydantic's words do not name the cause
            item["msg"] = NOT_UNICODE
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
