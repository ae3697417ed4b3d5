"""The FastAPI application factory: `create_app(settings)`."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from service import dashboard
from service.access_log import AccessLogMiddleware
from service.body_limit import BodyLimitMiddleware
from service.db import Database
from service.errors import (
    NOT_UNICODE,
    TOO_DEEP,
    ServiceError,
    body_model,
    json_safe,
    readable_detail,
)
from service.metrics import LatencyMiddleware, make_registry
from service.redact import redact
from service.routes import experiments, health, protocol, studies, workers
from service.security import SecurityMiddleware
from service.settings import Settings
from studies.log_setup import configure_logging

DESCRIPTION = (
    "Tune (α, ε) of optimizers with server-side tuners and leased trials; "
    "workers pull trials over HTTP (`avatune worker`)."
)
log = logging.getLogger("avatune.server")
#: Settings that, when given (`avatune serve` exports them), make each API process set up logging.
LOG_SETTINGS = frozenset({"log_level", "log_format"})


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    """The avatune API over `settings.database_url` (already migrated: `avatune db upgrade`)."""
    settings = settings or Settings()
    if LOG_SETTINGS & settings.model_fields_set:
        configure_logging(settings.log_level, settings.log_format)
    db = db or Database(settings.database_url, pool_size=settings.pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pid = os.getpid()
        log.info(
            "api process %d ready (%s)", pid, db.dialect, extra={"pid": pid, "dialect": db.dialect}
        )
        yield
        log.info("api process %d shutting down", pid, extra={"pid": pid})
        db.dispose()

    app = FastAPI(title="avatune", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db
    app.state.registry, histogram = make_registry(db)
    # The worker protocol first: routes are matched in order, and it is the hot path.
    for router in (protocol.router, studies.router, experiments.router, workers.router):
        app.include_router(router)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files(), name="static")

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = json_safe(error.errors())  # echoed input: nesting cut, surrogates escaped
        detail = json_safe(readable_detail(errors, body_model(request.scope.get("route"))))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, error: RecursionError) -> JSONResponse:
        return JSONResponse({"detail": TOO_DEEP}, status_code=422)

    @app.exception_handler(UnicodeEncodeError)
    async def _not_unicode(_: Request, error: UnicodeEncodeError) -> JSONResponse:
        return JSONResponse({"detail": NOT_UNICODE}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, error: OperationalError) -> JSONResponse:
        # the driver's text (hosts, users, SQL) stays in the server's log, redacted
        reason = redact(str(error.orig))[:500]
        log.warning("database unavailable (%s %s): %s", request.method, request.url.path, reason)
        return JSONResponse(
            {"detail": "database unavailable, retry"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(LatencyMiddleware, histogram=histogram)
    app.add_middleware(
        SecurityMiddleware,
        bind=settings.host,
        extra_hosts=settings.allowed_hosts,
        docs_paths=(app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url),
    )  # Host allowlist, cross-site writes refused, security headers
    app.add_middleware(AccessLogMiddleware)  # outermost: sees every request and its status
    return app
