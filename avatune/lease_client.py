"""The lease protocol over HTTP (workers and user training loops), with retries.

Transport errors and 5xx answers are retried with capped exponential backoff (jittered)
until the server answers or `stop` is set. On a trial's heartbeat, result or failure, a 404
(the trial is gone: its study was deleted) or a 409 (its lease expired, was released, or it
was reported already) raises `Dropped`, never retried: the caller drops that trial and goes
on with the rest of its lease. `results` delivers many results in one POST and returns
the server's answer per item; on a server older than that route it raises `NoBatchRoute`.
Wire bodies are the pydantic models of `studies.protocol`, sent without the fields left at
their defaults (so an older server, which forbids fields it does not know, still reads them).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel

from avatune import errors
from studies.protocol import (
    Heartbeat,
    HeartbeatAck,
    LeaseRequest,
    LeaseResponse,
    ResultBatch,
    ResultBatchAck,
    ResultItem,
    ResultItemAck,
    TrialAck,
    TrialFailure,
    TrialResult,
)
from studies.server_url import ROUTE_MISS_STATUSES, is_route_miss, not_avatune_message, server_url

M = TypeVar("M", bound=BaseModel)


class Stopped(errors.AvatuneError):
    """The caller asked to stop while the server was unreachable."""


class Unauthorized(errors.Unauthorized):
    """The server refused the token (401/403): retrying cannot help."""


class Rejected(errors.ApiError):
    """The server refused the request as invalid (4xx other than a trial's 404 or 409)."""


class Dropped(errors.ApiError):
    """404/409 on a trial's heartbeat or report: the server no longer holds it; drop it."""


class WrongServer(errors.NotAvatuneServer):
    """What answers at the URL is not avatune's API (a route miss): retrying cannot help."""


class NoBatchRoute(errors.AvatuneError):
    """The server predates `POST /api/trials/results`: send one result per POST."""


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: first, first·factor, … up to `cap` seconds."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delays(self) -> Callable[[], float]:
        """A fresh sequence of delays, one per call."""
        delay = self.first

        def next_delay() -> float:
            nonlocal delay
            value = delay * random.uniform(0.5, 1.0)
            delay = min(self.cap, delay * self.factor)
            return value

        return next_delay


class ServiceClient:
    """Calls of the worker protocol against one server."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        stop: threading.Event | None = None,
        on_retry: Callable[[str, float], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        #: The normalised server URL (ValueError with the fix when malformed).
        self.url = server_url(server)
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self.backoff = backoff or Backoff()
        self._stop = stop or threading.Event()
        self.on_retry = on_retry

    @property
    def stop(self) -> threading.Event:
        """The event (given at construction) that ends waiting out an unreachable server."""
        return self._stop

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _post(
        self, path: str, body: BaseModel, *, retry: bool, trial: bool = False
    ) -> httpx.Response:
        """POST `body`, retrying while unreachable; `Dropped` on a trial call's 404/409."""
        delays = self.backoff.delays()
        while True:
            try:
                response = self._http.post(
                    path,
                    content=body.model_dump_json(exclude_defaults=True),
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code < 500 or response.status_code in ROUTE_MISS_STATUSES:
                    break
                reason = f"server error {response.status_code}"
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error}"
            if not retry:
                raise ConnectionError(reason)
            delay = delays()
            if self.on_retry is not None:
                self.on_retry(reason, delay)
            if self._stop.wait(delay):
                raise Stopped(reason)
        if response.status_code in (401, 403):
            raise Unauthorized(response.status_code, _detail(response), path)
        if is_route_miss(response.status_code, _route_detail(response)):
            raise WrongServer(not_avatune_message(self.url, path, response.status_code))
        if trial and response.status_code in (404, 409):
            raise Dropped(response.status_code, _detail(response), path)
        if response.status_code >= 400:
            raise Rejected(response.status_code, _detail(response), path)
        return response

    def lease(self, request: LeaseRequest, *, retry: bool = True) -> LeaseResponse:
        """Lease trials, waiting out an unreachable server (ConnectionError without `retry`)."""
        response = self._post("/api/leases", request, retry=retry)
        return LeaseResponse.model_validate_json(response.content)

    def heartbeat(self, trial_id: int, beat: Heartbeat) -> HeartbeatAck:
        """Extend the whole lease, not retried (ConnectionError); `Dropped`: this trial only."""
        response = self._post(f"/api/trials/{trial_id}/heartbeat", beat, retry=False, trial=True)
        return HeartbeatAck.model_validate_json(response.content)

    def result(self, trial_id: int, result: TrialResult, *, retry: bool = True) -> TrialAck:
        """Deliver a result; `Dropped` when the lease is no longer live or the trial gone."""
        path = f"/api/trials/{trial_id}/result"
        response = self._post(path, result, retry=retry, trial=True)
        return TrialAck.model_validate_json(response.content)

    def results(
        self, items: Sequence[tuple[int, TrialResult]], *, retry: bool = True
    ) -> list[ResultItemAck]:
        """Deliver results in one POST; the server's answer per item, in order (200: recorded,
        404/409: drop it, 422: invalid). `NoBatchRoute` from a server without the route."""
        batch = ResultBatch(items=[ResultItem(trial_id=t, result=r) for t, r in items])
        try:
            response = self._post("/api/trials/results", batch, retry=retry)
        except WrongServer as error:
            raise NoBatchRoute(str(error)) from None
        acks = ResultBatchAck.model_validate_json(response.content).items
        if len(acks) != len(items):
            raise Rejected(response.status_code, f"{len(acks)} answers to {len(items)} items")
        return acks

    def failure(self, trial_id: int, failure: TrialFailure, *, retry: bool = True) -> TrialAck:
        """Report a failure or a release; `Dropped` when refused."""
        path = f"/api/trials/{trial_id}/failure"
        response = self._post(path, failure, retry=retry, trial=True)
        return TrialAck.model_validate_json(response.content)


def _route_detail(response: httpx.Response) -> object:
    """The JSON `detail` of a response, None when it has none."""
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return None


def _detail(response: httpx.Response) -> object:
    """The JSON `detail` of a refusal (a string, or a 422's list of issues), else its text."""
    detail = _route_detail(response)
    return response.text[:500] if detail is None else detail
