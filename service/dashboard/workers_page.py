"""The workers page (`/workers`): devices, last seen, trials done, throughput."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection

from service.dashboard.pages import render
from service.dashboard.rates import worker_rates
from service.deps import Db
from service.models import utcnow
from service.repositories.workers import list_workers

router = APIRouter(include_in_schema=False)


def workers_table(conn: Connection, now: datetime, lease_seconds: float) -> dict[str, Any]:
    """Each worker with its pace, and whether it was seen within a lease."""
    workers = list_workers(conn, now)
    rates = worker_rates(conn, [w.id for w in workers], now)
    rows = [
        {
            "worker": w,
            "rate": rates.get(w.id, 0.0),
            "online": (now - w.last_seen).total_seconds() <= lease_seconds,
        }
        for w in workers
    ]
    return {
        "workers": rows,
        "online": sum(r["online"] for r in rows),
        "total_rate": sum(r["rate"] for r in rows),
        "now": now,
    }


def _context(request: Request, db: Db) -> dict[str, Any]:
    with db.read() as conn:
        return workers_table(conn, utcnow(), request.app.state.settings.lease_seconds)


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, db: Db) -> HTMLResponse:
    """Every worker that has asked for trials."""
    return render(request, "workers.html", _context(request, db))


@router.get("/partials/workers", response_class=HTMLResponse)
def workers_fragment(request: Request, db: Db) -> HTMLResponse:
    """The workers table alone, for in-place refresh."""
    return render(request, "_workers_table.html", _context(request, db))
