"""Schemathesis over the OpenAPI schema: generated requests on every route, no 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.service.helpers import app_for, grid_study

pytestmark = pytest.mark.slow
EXAMPLES = 15


def test_no_route_answers_5xx(database_url: str) -> None:
    app = app_for(database_url, max_body_bytes=256 * 1024)
    with TestClient(app) as client:  # a study with trials in several states
        client.post("/api/studies", json=grid_study(n_alpha=3, n_eps=3))
        lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 3}).json()
        client.post(
            f"/api/trials/{lease['trials'][0]['trial_id']}/result",
            json={"token": lease["token"], "value": 1.0},
        )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
