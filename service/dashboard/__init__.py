"""The dashboard: server-rendered pages (Jinja2) over the service's database, charts drawn by
plotly.js served from the installed plotly package, live updates by polling new trials.

`router` holds every page and its data endpoints; `static_files()` is mounted at /static.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.dashboard import (
    assets,
    controls,
    experiment_pages,
    form_pages,
    overview,
    study_pages,
    workers_page,
)
from service.dashboard.assets import static_files

router = APIRouter(include_in_schema=False)
# The forms first: /studies/new must not be read as /studies/{id}.
_PARTS = (form_pages, overview, study_pages, experiment_pages, controls, workers_page, assets)
for _part in _PARTS:
    router.include_router(_part.router)

__all__ = ["router", "static_files"]
