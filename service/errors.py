"""Domain errors raised by repositories and leases; the app maps them to HTTP statuses."""

from __future__ import annotations

import math
from typing import Any


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
