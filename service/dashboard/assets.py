"""Static assets: the dashboard's CSS and JS, and plotly.js from the installed `plotly` package
(no CDN, so the server works offline)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.staticfiles import StaticFiles

from service.dashboard.templating import PLOTLY_PATH, STATIC

router = APIRouter(include_in_schema=False)


def plotly_file() -> Path:
    """plotly.min.js as shipped in the plotly Python package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


@cache
def _plotly_bytes() -> tuple[bytes, bytes, str]:
    raw = plotly_file().read_bytes()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0), hashlib.sha1(raw).hexdigest()[:16]


@router.get(PLOTLY_PATH)
def plotly_js(request: Request) -> Response:
    """plotly.min.js, gzip-compressed when the browser accepts it, cached for a day."""
    raw, packed, tag = _plotly_bytes()
    headers = {
        "Cache-Control": "public, max-age=86400",
        "ETag": f'"{tag}"',
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == f'"{tag}"':
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type="text/javascript", headers=headers)
    return Response(raw, media_type="text/javascript", headers=headers)


def static_files() -> StaticFiles:
    """The dashboard's own CSS, JS and icons (`service/static`), to mount at /static."""
    return StaticFiles(directory=STATIC)
