"""The login page (`/login`): a form posting the server's token, which an HttpOnly,
SameSite=Strict cookie then keeps (`form_auth`), so that pages protected by
`AVATUNE_PROTECT_READS` (and the dashboard's forms and buttons) accept this browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.dashboard.form_auth import COOKIE_DAYS, cross_site, remember, token_problem
from service.dashboard.forms import first, read_form
from service.dashboard.pages import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str) -> str:
    """`target` when it is a path on this server, else `/` (no redirects to other sites)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    return target


def _page(request: Request, target: str, error: str | None, status: int = 200) -> HTMLResponse:
    context = {"next": target, "error": error, "days": COOKIE_DAYS}
    return render(request, "login.html", context, status)


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, target: Annotated[str, Query(alias="next", max_length=2000)] = "/"
) -> HTMLResponse:
    """The token form."""
    return _page(request, safe_next(target), None)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    """Check the token, keep it in the cookie and go back to the page asked for."""
    fields = await read_form(request)
    target = safe_next(first(fields, "next") or "/")
    if cross_site(request):
        return _page(request, target, "this form was posted from another site", 403)
    token = first(fields, "token")
    problem = token_problem(request, token or None) if token else "enter the server's token"
    if problem:
        return _page(request, target, problem, 401 if not token else 403)
    root = request.scope.get("root_path", "").rstrip("/")
    response = RedirectResponse(f"{root}{target}", status_code=303)
    remember(request, response, token)
    return response
