"""Liveness (`/healthz`, always open) and Prometheus metrics (`/metrics`, behind the token
when reads are protected: scrape it with a bearer token)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.deps import READ, Db
from studies.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"model": Health}})
def healthz(db: Db) -> Health:
    """Whether the server runs and reaches its database."""
    try:
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse(  # type: ignore[return-value]
            {"status": "unavailable", "database": db.dialect}, status_code=503
        )
    return Health(status="ok", database=db.dialect)


@router.get("/metrics", response_class=Response, dependencies=READ)
def metrics(request: Request) -> Response:
    """Prometheus metrics: trials by state, active leases, request latency."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
