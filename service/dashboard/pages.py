"""Rendering helpers shared by the page routes: templates and HTML error pages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from service.dashboard.templating import templates

#: Pages change with every trial: browsers must ask again.
NO_STORE = {"Cache-Control": "no-store"}


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A template rendered into an HTML response."""
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=NO_STORE
    )


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """An HTML page saying what went wrong (e.g. a study that does not exist)."""
    return render(request, "error.html", {"status": status_code, "message": message}, status_code)
