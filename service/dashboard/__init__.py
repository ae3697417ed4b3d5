"""The dashboard: server-rendered pages (Jinja2) over the service's database, charts drawn by
plotly.js served from the installed plotly package, live updates by polling new trials.

`router` holds every page and its data endpoints; `static_files()` is mounted at /static.
When the server protects reads (`AVATUNE_PROTECT_READS`), every page but /login and the
assets needs the token (the login cookie, or a bearer header).
"""

from __future__ import annotations

from fastapi import APIRouter

from service.dashboard import (
    assets,
    controls,
    experiment_pages,
    form_pages,
    login,
    overview,
    study_pages,
    workers_page,
)
from service.dashboard.assets import static_files
from service.deps import READ

router = APIRouter(include_in_schema=False)
# The forms first: /studies/new must not be read as /studies/{id}.
_PARTS = (form_pages, overview, study_pages, experiment_pages, controls, workers_page)
_OPEN = (login, assets)
for _part in _PARTS:
    router.include_router(_part.router, dependencies=READ)
for _part in _OPEN:
    router.include_router(_part.router)

__all__ = ["router", "static_files"]
