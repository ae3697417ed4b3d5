"""The access log: one `avatune.access` line per HTTP request (method, path, status, ms,
client), written when the response ends; cheap enough for the worker protocol's hot path."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("avatune.access")


class AccessLogMiddleware:
    """Log each HTTP request once, as INFO (a 5xx as WARNING), with structured fields."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            ms = round((time.perf_counter() - start) * 1000, 2)
            client = scope.get("client")
            where = f"{client[0]}:{client[1]}" if client else "-"
            method, path = scope["method"], scope["path"]
            log.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "%s %s %d %.1fms %s",
                method,
                path,
                status,
                ms,
                where,
                extra={"method": method, "path": path, "status": status, "ms": ms, "client": where},
            )
