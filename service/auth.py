"""Bearer-token auth for mutating routes and the worker protocol (when a token is set), and
for reads too when the server protects them (`AVATUNE_PROTECT_READS`)."""

from __future__ import annotations

import hmac
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="AVATUNE_TOKEN, when the server has one.")
#: Methods that only read: the ones `require_read` guards (writes have `require_token`).
READ_METHODS = frozenset({"GET", "HEAD"})


def _matches(given: str | None, expected: str) -> bool:
    """Whether `given` is the token (constant-time compare)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def require_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """Refuse the request unless it carries the server's token (constant-time compare)."""
    expected: str | None = request.app.state.settings.token_value
    if expected is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this server needs `Authorization: Bearer <token>` (the server's AVATUNE_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not _matches(credentials.credentials, expected):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "wrong token: use the server's AVATUNE_TOKEN"
        )


def _wants_page(request: Request) -> bool:
    """Whether a browser navigates here (a login page helps), not a script or a client."""
    return "text/html" in request.headers.get("accept", "") and not request.headers.get(
        "x-requested-with"
    )


def login_url(request: Request) -> str:
    """The dashboard's login page, coming back to this request's path afterwards."""
    root = request.scope.get("root_path", "").rstrip("/")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{root}/login?next={quote(here, safe='')}"


async def require_read(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """When reads are protected, refuse a GET without the token: the bearer header (API
    clients, workers, scrapers) or the dashboard's login cookie; browsers go to /login."""
    settings = request.app.state.settings
    if not settings.protect_reads or request.method not in READ_METHODS:
        return
    expected: str = settings.token_value  # protect_reads needs one (Settings checks)
    bearer: str | None = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        bearer = credentials.credentials
    if _matches(bearer, expected):
        return
    from service.dashboard.form_auth import COOKIE  # the dashboard imports this module

    if _matches(request.cookies.get(COOKIE), expected):
        return
    if _wants_page(request):
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": login_url(request)})
    if bearer is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "wrong token: use the server's AVATUNE_TOKEN"
        )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "this server protects reads: send `Authorization: Bearer <token>` (its AVATUNE_TOKEN), "
        "or log in at /login in a browser",
        headers={"WWW-Authenticate": "Bearer"},
    )


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
