"""Property: any text (lone surrogates, NUL, other scripts' digits) and any number (NaN, ±∞,
huge, tiny, subnormal, negative) in the API's string and number fields is answered below
500, every 4xx with a JSON `detail` saying why, and a study it creates has pages that render."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.helpers import app_for, grid_study

#: Examples per property and backend: the file runs in well under a minute.
EXAMPLES = 60
DETERMINISTIC = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples on every run: CI is deterministic
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates: JSON can escape them, UTF-8 cannot
    st.sampled_from("\x00²¹１٣.:-_/ e"),
)
texts = st.text(chars, max_size=30) | st.sampled_from(["", " ", "adam", "tpe", "1e-3", "NaN"])
floats = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True) | st.sampled_from(
    [0.0, -0.0, 5e-324, 1e-320, 1.7976931348623157e308, 1e10, math.nextafter(1e10, math.inf)]
)
ints = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, -1, 2**31, 2**63])
numbers = floats | ints
positive = st.floats(min_value=5e-324, max_value=1.7976931348623157e308, allow_subnormal=True)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)


def _maybe(base: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`base` mostly (so most specs are otherwise valid), else a value from `strategy`."""
    return st.integers(0, 5).flatmap(lambda k: strategy if k == 0 else st.just(base))


@st.composite
def bounds(draw: Callable[..., Any]) -> dict[str, Any]:
    """Log-scale bounds: any positive floats (subnormal to huge), sometimes any number."""
    return {"low": draw(_maybe(1e-4, positive | numbers)), "high": draw(_maybe(1.0, positive))}


@st.composite
def study_specs(draw: Callable[..., Any]) -> dict[str, Any]:
    """A study spec, valid to begin with, with some strings and numbers replaced."""
    spec = grid_study(n_alpha=2, n_eps=2, steps=5)
    spec["name"] = draw(_maybe("s", texts))
    spec["task"] = draw(_maybe("mnist1d-mlp", texts | st.fixed_dictionaries({"name": texts})))
    betas = st.fixed_dictionaries({"name": st.just("adam"), "betas": st.tuples(numbers, numbers)})
    spec["optimizer"] = draw(_maybe("adam", texts | betas))
    tuner = draw(_maybe("random", st.sampled_from(["grid", "tpe", "gld", "cmaes"]) | texts))
    config = draw(_maybe({}, st.dictionaries(texts, scalars, max_size=2)))
    spec["tuner"] = {"name": tuner, "seed": draw(_maybe(1, ints)), "config": config}
    if draw(st.booleans()):
        spec["space"] = {"alpha": draw(bounds()), "eps": draw(bounds())}
    else:
        axis = st.lists(positive, min_size=1, max_size=3, unique=True).map(sorted)
        spec["space"] = {
            "alphas": draw(_maybe([1e-3, 1e-2], axis | st.lists(numbers, max_size=3))),
            "epsilons": draw(_maybe([1e-8], axis)),
        }
    spec["budget"] = draw(_maybe(1, numbers | texts))
    spec["fidelity"] = {"steps": draw(_maybe(5, numbers)), "seed": draw(_maybe(0, numbers))}
    return spec


@st.composite
def experiment_specs(draw: Callable[..., Any]) -> dict[str, Any]:
    """An experiment spec, valid to begin with, with some strings and numbers replaced."""
    return {
        "name": draw(_maybe("e", texts)),
        "task": draw(_maybe("mnist1d-mlp", texts)),
        "optimizers": draw(_maybe(["adam"], st.lists(texts, min_size=1, max_size=2))),
        "space": {
            "alphas": draw(_maybe([1e-3, 1e-2], st.lists(numbers, min_size=1, max_size=2))),
            "epsilons": draw(_maybe([1e-8], st.lists(numbers, min_size=1, max_size=2))),
        },
        "fidelity": {"steps": draw(_maybe(5, numbers))},
        "replay": {
            "seeds": draw(_maybe(2, numbers)),
            "deltas": draw(_maybe([1.0], st.lists(numbers, min_size=1, max_size=2))),
            "tuners": draw(_maybe(["gld"], st.lists(texts, min_size=1, max_size=2))),
        },
    }


def _raw(body: Any) -> bytes:
    """`body` as JSON bytes: surrogates as \\u escapes, NaN and ±∞ as JSON5-style literals."""
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode("ascii")


def _answered(client: TestClient, method: str, path: str, body: Any = None) -> Any:
    """The response, after checking it is no 5xx and, if a 4xx, a JSON `detail` message."""
    content = None if body is None else _raw(body)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    response = client.request(method, path, content=content, headers=headers)
    assert response.status_code < 500, (path, body, response.text[:500])
    if response.status_code >= 400:
        detail = json.loads(response.content.decode("utf-8"))["detail"]
        assert detail, (path, body)
    return response


def _finish_some(client: TestClient) -> None:
    """Lease a few trials and report them, so pages draw values (e.g. bin odd α bounds)."""
    lease = _answered(client, "POST", "/api/leases", {"worker_id": "w", "max_trials": 2}).json()
    for trial in lease["trials"]:
        report = {"token": lease["token"], "value": 1.0, "curve": [2.0, 1.0]}
        _answered(client, "POST", f"/api/trials/{trial['trial_id']}/result", report)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = app_for(database_url, max_body_bytes=256 * 1024)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_study_specs_with_odd_strings_and_numbers(client: TestClient) -> None:
    @given(spec=study_specs())
    @DETERMINISTIC
    def property_(spec: dict[str, Any]) -> None:
        response = _answered(client, "POST", "/api/studies", spec)
        if response.status_code == 201:
            study = response.json()["id"]
            _finish_some(client)
            for path in (f"/studies/{study}", f"/studies/{study}/data", f"/api/studies/{study}"):
                assert _answered(client, "GET", path).status_code == 200, path

    property_()


def test_experiment_specs_with_odd_strings_and_numbers(client: TestClient) -> None:
    @given(spec=experiment_specs())
    @DETERMINISTIC
    def property_(spec: dict[str, Any]) -> None:
        response = _answered(client, "POST", "/api/experiments", spec)
        if response.status_code == 201:
            experiment = response.json()["id"]
            assert _answered(client, "GET", f"/experiments/{experiment}").status_code == 200

    property_()


def test_worker_protocol_with_odd_strings_and_numbers(client: TestClient) -> None:
    client.post("/api/studies", json=grid_study(n_alpha=20, n_eps=20))

    @given(
        worker=_maybe("w", texts),
        k=_maybe(1, numbers),
        value=numbers,
        curve=st.lists(numbers, max_size=3),
        error=texts,
        token=_maybe(None, texts),
    )
    @DETERMINISTIC
    def property_(
        worker: Any, k: Any, value: Any, curve: list[Any], error: str, token: str | None
    ) -> None:
        lease = _answered(client, "POST", "/api/leases", {"worker_id": worker, "max_trials": k})
        trials = lease.json()["trials"] if lease.status_code == 200 else []
        for trial in trials:
            path = f"/api/trials/{trial['trial_id']}"
            given_token = lease.json()["token"] if token is None else token
            report = {"token": given_token, "value": value, "curve": curve}
            if _answered(client, "POST", f"{path}/result", report).status_code != 200:
                failure = {"token": given_token, "error": error, "release": True}
                _answered(client, "POST", f"{path}/failure", failure)

    property_()
