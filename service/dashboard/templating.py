"""The dashboard's Jinja2 environment: templates, cache-busted asset URLs, display filters."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from service.models import utcnow
from studies.table import optimizer_label

SERVICE = Path(__file__).resolve().parents[1]
TEMPLATES = SERVICE / "templates"
STATIC = SERVICE / "static"
PLOTLY_PATH = "/vendor/plotly.min.js"


@cache
def plotly_version() -> str:
    """The installed plotly package's version, tagging plotly.min.js URLs for caches."""
    try:
        return metadata.version("plotly")
    except metadata.PackageNotFoundError:
        return "0"


@cache
def asset_version(name: str) -> str:
    """A short content hash of a static file, so browsers refetch it only when it changes."""
    path = STATIC / name
    return hashlib.sha1(path.read_bytes()).hexdigest()[:10] if path.is_file() else "0"


def number(value: float | None, digits: int = 4) -> str:
    """A value with `digits` significant digits; a dash when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def rate(value: float | None) -> str:
    """Trials per minute: 3 significant digits, whole numbers from 100 on (1,200 not 1.2e+03)."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.0f}" if value >= 100 else number(value, 3)


def fixed(value: float | None, digits: int = 3) -> str:
    """A value with `digits` decimals (so 5e-32 reads 0.000); a dash when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def sci(value: float | None) -> str:
    """α or ε as users write them: 1e-3, 5e-7, 0.1 → 1e-1."""
    if value is None:
        return "–"
    text = f"{value:.3g}"
    if "e" not in text and (abs(value) < 1e-2 or abs(value) >= 1e3):
        text = f"{value:.2e}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent)}"
    return text


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago `moment` was, in words: '12 s ago', '3 min ago'."""
    if moment is None:
        return "never"
    seconds = max(0.0, ((now or utcnow()) - moment).total_seconds())
    return f"{duration(seconds)} ago"


def duration(seconds: float | None) -> str:
    """A duration in words: '45 s', '3 min', '2 h 5 min', '3 d 4 h'; a dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _context(request: Request) -> dict[str, Any]:
    root = request.scope.get("root_path", "").rstrip("/")
    settings = request.app.state.settings
    return {
        "root": root,
        "asset": lambda name: f"{root}/static/{name}?v={asset_version(name)}",
        "plotly_src": f"{root}{PLOTLY_PATH}?v={plotly_version()}",
        "auth_on": settings.token_value is not None,
    }


def _make() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES, context_processors=[_context])
    env = templates.env
    env.filters.update(number=number, rate=rate, fixed=fixed, sci=sci, ago=ago, duration=duration)
    env.globals["optimizer_label"] = optimizer_label
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "allow_nan": False}
    env.policies["json.dumps_function"] = json.dumps
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates


templates = _make()
