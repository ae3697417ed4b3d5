"""The avatune server's URL as users type it: normalised, or refused with the fix.

Shared by the worker and the HTTP client commands (pure: no httpx, no torch).
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_SERVER = "http://127.0.0.1:8000"
SCHEMES = ("http", "https")
#: Statuses and `detail`s (None: no JSON detail) of a request no route of avatune's matched.
ROUTE_MISS_STATUSES = (404, 405, 501)
ROUTE_MISS_DETAILS = (None, "Not Found", "Method Not Allowed")


def server_url(text: str) -> str:
    """`text` as ``scheme://host[:port]`` (no trailing slash); ValueError saying what to fix."""
    raw = text.strip()
    if not raw:
        raise ValueError(f"the server URL is empty; give one, e.g. {DEFAULT_SERVER}")
    if "://" not in raw:
        guess = urlsplit(f"http://{raw.lstrip('/')}")
        fix = "add the scheme" if guess.path in ("", "/") else "add the scheme and drop the path"
        raise ValueError(f"the server URL {raw!r} has no scheme; {fix}: http://{guess.netloc}")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        fixed = f"http://{raw.split('://', 1)[1]}"
        raise ValueError(
            f"the server URL {raw!r} has scheme {parts.scheme!r}; use http or https: {fixed}"
        )
    if not parts.hostname:
        raise ValueError(f"the server URL {raw!r} has no host; e.g. {DEFAULT_SERVER}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(
            f"the server URL {raw!r} has a bad port; give a number 1-65535, "
            f"e.g. {scheme}://{parts.hostname}:8000"
        ) from None
    if port == 0:
        raise ValueError(f"the server URL {raw!r} has port 0; give the port the server listens on")
    base = f"{scheme}://{parts.netloc}"
    if parts.path not in ("", "/"):
        raise ValueError(
            f"drop the path {parts.path} from {raw!r}: the server URL is {base} "
            "(the API lives under /api on it)"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"drop the query from {raw!r}: the server URL is {base}")
    return base


def port_of(url: str) -> int:
    """The port `url` points at (its scheme's default when not written)."""
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def unreachable_message(url: str, reason: str) -> str:
    """Why nothing answered at `url`, and how to start a server there."""
    return (
        f"cannot reach the server at {url} ({reason}); is it running? "
        f"start one with `avatune serve --port {port_of(url)}`, or fix --server"
    )


def not_avatune_message(url: str, path: str, status: int) -> str:
    """What a 404 (or another refusal of the API paths) means: not an avatune server."""
    return (
        f"{url} answered {status} on {path}: it is not an avatune server (or not this "
        "version); check --server: it is the URL `avatune serve` prints, without a path"
    )


def is_route_miss(status: int, detail: object) -> bool:
    """Whether an answer says the API is not at this URL (a route miss, not a missing row:
    avatune's own 404s carry a detail such as "study 9 not found")."""
    return status in ROUTE_MISS_STATUSES and detail in ROUTE_MISS_DETAILS
