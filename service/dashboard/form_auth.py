"""Who may submit the dashboard's forms.

Read-only pages need nothing. When the server has a token (`AVATUNE_TOKEN`), a form must
carry it in its `token` field; the first accepted token is then remembered in an
HttpOnly, SameSite=Strict cookie, so later forms need not ask again. Posts from other
sites are refused either way (the Origin / Sec-Fetch-Site headers, `service.security`), so
a page elsewhere cannot make a visitor's browser create studies on a local server.
"""

from __future__ import annotations

import hmac

from fastapi import Request, Response

from service.security import cross_site_reason

COOKIE = "avatune_token"
COOKIE_DAYS = 30


def cross_site(request: Request) -> bool:
    """Whether the browser says this request comes from another site's page (the one check
    of `service.security`, whose middleware already refuses such writes)."""
    return cross_site_reason(request.headers) is not None


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def token_problem(request: Request, given: str | None) -> str | None:
    """Why this form may not be accepted (a message for the user), or None when it may."""
    expected: str | None = request.app.state.settings.token_value
    if expected is None:
        return None
    if given:
        return None if _matches(given, expected) else "wrong token: use the server's AVATUNE_TOKEN"
    if _matches(request.cookies.get(COOKIE), expected):
        return None
    return "this server needs its token (AVATUNE_TOKEN): enter it in the token field"


def remember(request: Request, response: Response, given: str | None) -> None:
    """Keep an accepted token in a cookie for the following forms."""
    if given and request.app.state.settings.token_value is not None:
        response.set_cookie(
            COOKIE,
            given,
            max_age=COOKIE_DAYS * 86400,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=request.scope.get("root_path", "").rstrip("/") or "/",
        )
