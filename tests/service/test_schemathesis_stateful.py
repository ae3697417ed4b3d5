"""Stateful schemathesis: sequences of calls chained by links (create a study, then get,
pause, resume, cancel or delete it; lease, then report), and no step answers 5xx."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.stateful import collect_transitions

from tests.conftest import fresh_database
from tests.service.helpers import app_for, grid_study

pytestmark = pytest.mark.slow
#: Scenarios and steps per scenario: bounded so the test runs in well under 90 s.
SCENARIOS = 30
STEPS = 8
#: Links a scenario must be able to follow (inferred by schemathesis from the schema).
NEEDED_LINKS = {
    "POST /api/studies": {
        "GET /api/studies/{study_id}",
        "POST /api/studies/{study_id}/pause",
        "POST /api/studies/{study_id}/resume",
        "POST /api/studies/{study_id}/cancel",
        "DELETE /api/studies/{study_id}",
    },
    "POST /api/leases": {"POST /api/trials/{trial_id}/result"},
}


def _seeded(url: str) -> Any:
    """An app whose database holds a study with a lease and a result, and an experiment."""
    app = app_for(url, max_body_bytes=256 * 1024)
    with TestClient(app) as client:
        client.post("/api/studies", json=grid_study(n_alpha=3, n_eps=3))
        experiment = {"name": "e", "task": "mnist1d-mlp", "optimizers": ["adam"]}
        client.post("/api/experiments", json=experiment | {"space": {"grid": "coarse"}})
        lease = client.post("/api/leases", json={"worker_id": "w", "max_trials": 3}).json()
        client.post(
            f"/api/trials/{lease['trials'][0]['trial_id']}/result",
            json={"token": lease["token"], "value": 1.0},
        )
    return app


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_sequence_of_calls_answers_5xx(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    scenarios = itertools.count()

    def fresh_app() -> Any:
        """The seeded app on a database of its own (each scenario starts from the same state,
        so Hypothesis replays a scenario exactly)."""
        folder = tmp_path / str(next(scenarios))
        folder.mkdir()
        return _seeded(fresh_database(backend, request, folder))

    schema = schemathesis.openapi.from_asgi("/openapi.json", fresh_app())
    machine = schema.as_state_machine()  # infers the links between operations
    operations = [result.ok() for result in schema.get_all_operations()]
    transitions = collect_transitions(operations).operations
    for source, targets in NEEDED_LINKS.items():
        linked = {link.target.label for link in transitions[source].outgoing}
        assert targets <= linked, (source, targets - linked)

    class NoServerErrors(machine):
        """Every step checked for a 5xx only (4xx answers to generated input are expected)."""

        def setup(self) -> None:
            """A fresh seeded app for this scenario."""
            self.app = fresh_app()

        def teardown(self) -> None:
            """Close the scenario's database connections."""
            self.app.state.db.dispose()

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            """Call this scenario's app."""
            return {"app": self.app}

        def validate_response(
            self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
        ) -> None:
            """Fail on a 5xx."""
            case.validate_response(response, checks=[not_a_server_error])

    NoServerErrors.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
