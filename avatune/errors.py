"""What `avatune.client` raises: one base class, and a readable message on each error.

`str(error)` is one line (or one line per validation issue) saying what went wrong and,
where the server said, what to change; catch `AvatuneError` for all of them.
"""

from __future__ import annotations

from typing import Any


class AvatuneError(Exception):
    """Base class of every error `avatune.client` raises on purpose."""


class ServerUnreachable(AvatuneError, ConnectionError):
    """Nothing answered at the server's URL (not running, wrong host or port)."""


class NotAvatuneServer(AvatuneError):
    """What answers at the URL is not avatune's API (or not this version of it)."""


class ApiError(AvatuneError):
    """The server refused a request: `status_code` and its `detail` (a string, or the
    list of validation issues of a 422); `str()` is ``"<status>: <readable detail>"``."""

    def __init__(self, status_code: int, detail: Any, path: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.path = path
        super().__init__(f"{status_code}: {readable_detail(detail)}")


class Unauthorized(ApiError):
    """401/403: the server wants a (different) token (`Client(url, token=...)`)."""


class NotFound(ApiError):
    """404: no such study, experiment or trial."""


class Conflict(ApiError):
    """409: the request does not fit the current state (e.g. pausing a paused study, the
    report of an experiment whose grids are incomplete)."""


class InvalidRequest(ApiError):
    """400/422: the server found the input invalid (the detail says what to change)."""


class ReportNotReady(AvatuneError):
    """The server is computing the experiment's report; ask again in a few seconds."""


class WaitTimeout(AvatuneError, TimeoutError):
    """`wait` (or `report(wait=True)`) ran out of time; `last` is the last record seen."""

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class TrialSettled(AvatuneError):
    """A trial handle was reported, failed or released twice (each trial settles once)."""


class WrongStudy(AvatuneError):
    """The server leased a trial of another study to a loop asking for one study only:
    the server predates the lease's `study_id` filter (the trial was handed back)."""


_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def api_error(status_code: int, detail: Any, path: str = "") -> ApiError:
    """The `ApiError` subclass for a refusal with `status_code`."""
    return _STATUS_ERRORS.get(status_code, ApiError)(status_code, detail, path)


def readable_detail(detail: Any) -> str:
    """An error body's `detail`: a string as is, a validation list as one line per issue
    (``field.path: message``, the request body's own prefix left out)."""
    if not isinstance(detail, list):
        return str(detail)
    lines = []
    for item in detail:
        if isinstance(item, dict):
            loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            lines.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
        else:
            lines.append(str(item))
    return "\n".join(lines)
