"""One HTTP connection to an avatune server: requests, and refusals turned into errors.

Every call either returns the server's answer or raises an `avatune.errors` error with a
readable message: `ServerUnreachable` when nothing answers, `NotAvatuneServer` on a route
miss (another web server at the URL), an `ApiError` subclass for avatune's own refusals.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from avatune.errors import NotAvatuneServer, ServerUnreachable, api_error
from studies.server_url import is_route_miss, not_avatune_message, server_url, unreachable_message

T = TypeVar("T")
JSON = {"Content-Type": "application/json"}


class Api:
    """Requests against one server (`url` normalised; ValueError with the fix if malformed)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = server_url(url)
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: BaseModel | None = None,
    ) -> httpx.Response:
        """Send one request; the response when its status is below 400 (202 included)."""
        content = None if body is None else body.model_dump_json()
        try:
            response = self._http.request(
                method, path, params=params, content=content, headers=JSON if body else None
            )
        except httpx.TransportError as error:
            raise ServerUnreachable(
                unreachable_message(self.url, str(error) or type(error).__name__)
            ) from None
        if response.status_code >= 400:
            detail = _json_detail(response)
            if is_route_miss(response.status_code, detail):
                raise NotAvatuneServer(not_avatune_message(self.url, path, response.status_code))
            shown = response.text[:500] if detail is None else detail
            raise api_error(response.status_code, shown, path)
        return response

    def get(self, path: str, kind: type[T] | Any, **params: Any) -> T:
        """GET `path` and parse its JSON as `kind` (a model, or e.g. ``list[StudyOut]``)."""
        response = self.request("GET", path, params=_params(params))
        return TypeAdapter(kind).validate_json(response.content)

    def post(self, path: str, kind: type[T] | Any, body: BaseModel | None = None) -> T:
        """POST (`body` as JSON) and parse the answer as `kind`."""
        response = self.request("POST", path, body=body)
        return TypeAdapter(kind).validate_json(response.content)

    def delete(self, path: str) -> None:
        """DELETE `path` (204: nothing to parse)."""
        self.request("DELETE", path)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left at None."""
    return {key: value for key, value in params.items() if value is not None}


def _json_detail(response: httpx.Response) -> Any:
    """The `detail` of a JSON error body; None when the body is not JSON or has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("detail") if isinstance(body, dict) else None
