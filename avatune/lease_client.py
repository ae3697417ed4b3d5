"""The lease protocol over HTTP (workers and user training loops), with retries.

Transport errors and 5xx answers are retried with capped exponential backoff (jittered)
until the server answers or `stop` is set; a 409 means the lease is no longer live and is
returned as such, never retried. Wire bodies are the pydantic models of `studies.protocol`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
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
    """The server refused the request as invalid (4xx other than 409)."""


class WrongServer(errors.NotAvatuneServer):
    """What answers at the URL is not avatune's API (a route miss): retrying cannot help."""


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
        self.stop = stop or threading.Event()
        self.on_retry = on_retry

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _post(self, path: str, body: BaseModel, *, retry: bool) -> httpx.Response | None:
        """POST `body`; None on 409. Retries while unreachable (when `retry`)."""
        delays = self.backoff.delays()
        while True:
            try:
                response = self._http.post(
                    path,
                    content=body.model_dump_json(),
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
            if self.stop.wait(delay):
                raise Stopped(reason)
        if response.status_code == 409:
            return None
        if response.status_code in (401, 403):
            raise Unauthorized(response.status_code, _detail(response), path)
        if is_route_miss(response.status_code, _route_detail(response)):
            raise WrongServer(not_avatune_message(self.url, path, response.status_code))
        if response.status_code >= 400:
            raise Rejected(response.status_code, _detail(response), path)
        return response

    def lease(self, request: LeaseRequest, *, retry: bool = True) -> LeaseResponse:
        """Lease trials, waiting out an unreachable server (ConnectionError without `retry`)."""
        response = self._post("/api/leases", request, retry=retry)
        assert response is not None
        return LeaseResponse.model_validate_json(response.content)

    def heartbeat(self, trial_id: int, beat: Heartbeat) -> HeartbeatAck | None:
        """One heartbeat (no retry: the next one comes soon); None when the lease is lost.

        Raises ConnectionError when the server is unreachable.
        """
        response = self._post(f"/api/trials/{trial_id}/heartbeat", beat, retry=False)
        return None if response is None else HeartbeatAck.model_validate_json(response.content)

    def result(self, trial_id: int, result: TrialResult, *, retry: bool = True) -> bool:
        """Deliver a result: True when recorded, False when refused (lease no longer live)."""
        return self._post(f"/api/trials/{trial_id}/result", result, retry=retry) is not None

    def failure(self, trial_id: int, failure: TrialFailure, *, retry: bool = True) -> bool:
        """Report a failure or release: True when recorded, False when refused."""
        return self._post(f"/api/trials/{trial_id}/failure", failure, retry=retry) is not None


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
