"""Prometheus metrics: request latency (middleware) and trial/lease/study gauges (read from
the database at scrape time, so every API process reports the same numbers)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import Database
from service.models import Study, Trial, TrialState, Worker, utcnow

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


def _tally(conn: Connection, column: Any) -> dict[str, int]:
    return {state: n for state, n in conn.execute(select(column, func.count()).group_by(column))}


class DatabaseCollector(Collector):
    """Trials by state, live leases, studies by state, workers seen in the last minute."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        trials = GaugeMetricFamily("avatune_trials", "Trials by state.", labels=["state"])
        studies = GaugeMetricFamily("avatune_studies", "Studies by state.", labels=["state"])
        with self.db.read() as conn:
            by_state = _tally(conn, Trial.state)
            study_states = _tally(conn, Study.state)
            leases = conn.execute(
                select(func.count(func.distinct(Trial.lease_token))).where(
                    Trial.state == TrialState.leased, Trial.lease_expires_at > now
                )
            ).scalar_one()
            recent = conn.execute(
                select(func.count()).where(Worker.last_seen > now - timedelta(minutes=1))
            ).scalar_one()
        for state in TrialState:
            trials.add_metric([state.value], by_state.get(state.value, 0))
        for state, n in study_states.items():
            studies.add_metric([state], n)
        yield trials
        yield studies
        yield GaugeMetricFamily("avatune_active_leases", "Live leases.", value=leases)
        yield GaugeMetricFamily(
            "avatune_workers_active", "Workers seen in the last minute.", value=recent
        )


class LatencyMiddleware:
    """Observe every HTTP request's duration by method, route template and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.histogram.labels(scope["method"], path, str(status[0])).observe(
                time.perf_counter() - start
            )


def make_registry(db: Database) -> tuple[CollectorRegistry, Histogram]:
    """A registry of this app's metrics (one per app, so tests can build many apps)."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(db))
    histogram = Histogram(
        "avatune_request_seconds",
        "HTTP request latency.",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    return registry, histogram
