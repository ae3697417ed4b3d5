"""What every request passes first (one pure ASGI middleware): the Host allowlist against
DNS rebinding, the refusal of writes from other sites' pages (CSRF), and the headers that
keep pages from being framed or sniffed (CSP, X-Frame-Options, ...).

Writes (POST, PUT, PATCH, DELETE) are refused with 403 when the browser says they come from
another site: `Sec-Fetch-Site: cross-site`, or an `Origin` whose host and port are not the
request's `Host`. Requests with neither header (curl, workers, the Python client) go on.
A Host is answered when it is localhost's, the bound address, this machine's name, an IP
address (rebinding needs a name the attacker's DNS answers) or in AVATUNE_ALLOWED_HOSTS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Methods that change state: the ones refused from other sites.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Sec-Fetch-Site values of requests this server's own pages (or no page) made.
OWN_FETCH_SITES = frozenset({"same-origin", "same-site", "none"})
#: Names that always reach this machine only.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "*.localhost")
#: Addresses that mean "every interface": no client sends them as its Host.
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

#: The dashboard's policy: its scripts and plotly.js are files of its own; plotly.js sets
#: inline styles; figures export as data:/blob: images.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: FastAPI's /docs and /redoc: Swagger UI / ReDoc from their CDN, started by an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Sent on every response (a route's own value wins). Referrer-Policy is same-origin, not
#: no-referrer: under no-referrer browsers send `Origin: null` on the dashboard's own posts.
HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _ascii_digits(text: str) -> bool:
    """Whether `text` is a port number: ASCII digits only (`str.isdigit` passes '²')."""
    return text.isascii() and text.isdigit()


def split_host(value: str) -> tuple[str, int | None]:
    """A Host header (or host[:port] entry) as (lower-case name, port or None)."""
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):  # [::1]:8000
        name, _, rest = value[1:].partition("]")
        if rest.startswith(":") and _ascii_digits(rest[1:]):
            port = int(rest[1:])
        return name, port
    if value.count(":") == 1:
        name, _, digits = value.partition(":")
        if _ascii_digits(digits):
            port = int(digits)
        value = name
    return value.rstrip("."), port


def default_hosts(bind: str) -> set[str]:
    """Names allowed unconfigured: localhost's, the bound address, this machine's name."""
    hosts = set(LOCAL_HOSTS)
    if bind.strip().lower() not in WILDCARD_ADDRESSES:
        hosts.add(split_host(bind)[0])
    name = socket.gethostname().strip().lower()
    if name:
        hosts.add(name)
    return hosts


def allowed_hosts(bind: str, extra: Iterable[str]) -> frozenset[str] | None:
    """Host names (or fnmatch patterns) this server answers; None when `extra` has `*`."""
    names = {split_host(entry)[0] for entry in extra if entry.strip()}
    if "*" in names:
        return None
    return frozenset(default_hosts(bind) | names)


def host_allowed(host: str, allowed: frozenset[str] | None) -> bool:
    """Whether a Host header is an IP address or a name in `allowed` (None: any)."""
    if allowed is None:
        return True
    name = split_host(host)[0]
    if _is_ip(name):  # rebinding needs a name the attacker's DNS answers; an address is none
        return True
    return name in allowed or any(fnmatchcase(name, p) for p in allowed if "*" in p)


def _is_ip(name: str) -> bool:
    """Whether `name` is an IP address, not a host name."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _same_authority(origin: str, host: str) -> bool:
    """Whether an Origin header names the server the Host header does (ports included)."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if not parts.scheme or not parts.hostname:  # "null": a sandboxed or opaque origin
        return False
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    name, port = split_host(host)
    return (parts.hostname.lower().rstrip("."), origin_port or default) == (name, port or default)


def cross_site_reason(headers: Mapping[str, str]) -> str | None:
    """The header that says this request comes from another site's page, or None."""
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in OWN_FETCH_SITES:
        return f"Sec-Fetch-Site: {site[:40]}"
    origin = headers.get("origin")
    if origin is not None and not _same_authority(origin, headers.get("host", "")):
        return f"Origin: {origin[:100]}"
    return None


class SecurityMiddleware:
    """Refuse unknown Host names (400) and cross-site writes (403); add security headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bind: str = "127.0.0.1",
        extra_hosts: Iterable[str] = (),
        docs_paths: Iterable[str | None] = (),
    ) -> None:
        """Answer the names `allowed_hosts(bind, extra_hosts)`; `docs_paths` get DOCS_CSP."""
        self.app = app
        self.allowed = allowed_hosts(bind, extra_hosts)
        self.docs_paths = frozenset(path for path in docs_paths if path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with the headers added to its response."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None and not host_allowed(host, self.allowed):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            name = split_host(host)[0][:100]
            detail = (
                f"this server does not answer the host name {name!r} (a guard against DNS "
                f"rebinding); to allow it, set AVATUNE_ALLOWED_HOSTS={name} on the server "
                "(a comma list; * allows any)"
            )
            await self._refuse(scope, receive, send, 400, detail)
            return
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS:
            reason = cross_site_reason(headers)
            if reason is not None:
                detail = (
                    f"refused: this request came from another site's page ({reason}); "
                    "change things from the dashboard itself, or from a client such as "
                    "curl or `avatune`"
                )
                await self._refuse(scope, receive, send, 403, detail)
                return
        await self.app(scope, receive, self._with_headers(scope, send))

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str
    ) -> None:
        """Answer `status` with `detail` (JSON) and the security headers."""
        response = JSONResponse({"detail": detail}, status_code=status)
        await response(scope, receive, self._with_headers(scope, send))

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        """`send` that adds the security headers to the response's start."""
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        policy = DOCS_CSP if path in self.docs_paths else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.setdefault("content-security-policy", policy)
                for name, value in HEADERS.items():
                    response_headers.setdefault(name, value)
            await send(message)

        return send_with_headers
