"""`POST /api/trials/results` on SQLite and PostgreSQL: a batch records each item as the
single result route would, answers each item on its own (200/404/409/422), counts nothing
twice and settles studies alike; and `LeaseRequest.skip_studies` leaves studies out."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from itertools import zip_longest
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studies.protocol import MAX_LEASE_TRIALS, MAX_SKIP_STUDIES
from tests.service.helpers import app_for, grid_study

#: What differs between two equal trainings of two studies (not what they recorded).
_IDENTITY = {"id", "study_id", "created_at", "finished_at", "lease_expires_at", "worker_id"}
#: CSV columns that differ between two equal trainings of two studies.
_CSV_IDENTITY = {"created_at", "finished_at", "worker_id"}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """The app on a fresh database of each backend."""
    with TestClient(app_for(database_url, lease_seconds=30)) as test_client:
        yield test_client


def create(client: TestClient, name: str, **options: Any) -> int:
    """Create a grid study; its id."""
    response = client.post("/api/studies", json=grid_study(name, **options))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def lease(client: TestClient, k: int = 16, **request: Any) -> dict[str, Any]:
    """Lease up to `k` trials (`request`: more fields of the lease request)."""
    body = {"worker_id": "w", "max_trials": k, **request}
    response = client.post("/api/leases", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def post_batch(client: TestClient, items: list[dict[str, Any]]) -> Any:
    """POST a batch of results."""
    return client.post("/api/trials/results", json={"items": items})


def result_of(token: str, number: int) -> dict[str, Any]:
    """A full result for the trial numbered `number`: two seeds, curve, numerics, seconds."""
    seeds = [1.0 + number, 2.0 + number]
    return {
        "token": token,
        "value": sum(seeds) / 2,
        "test_value": sum(seeds) / 2 + 1.0,
        "curve": [3.0 + number, 2.0 + number],
        "seconds": 0.25 * (number + 1),
        "seed_values": seeds,
        "seed_test_values": [s + 1.0 for s in seeds],
        "seed_diverged": [False, False],
        "chance": 90.0,
        "numerics": f"cpu fp32, tf32 off, run {number}",
    }


def trials(client: TestClient, study_id: int) -> list[dict[str, Any]]:
    """The study's trials (TrialOut, curves included)."""
    response = client.get(f"/api/studies/{study_id}/trials", params={"curves": True})
    assert response.status_code == 200, response.text
    return response.json()["trials"]


def recorded(client: TestClient, study_id: int) -> list[dict[str, Any]]:
    """The study's trials without what tells two studies' equal trainings apart."""
    return [{k: v for k, v in t.items() if k not in _IDENTITY} for t in trials(client, study_id)]


def csv_rows(client: TestClient, study_id: int) -> list[dict[str, str]]:
    """The CSV export's rows without the columns two studies' equal trainings differ in."""
    response = client.get(f"/api/studies/{study_id}/export.csv")
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    return [{k: v for k, v in row.items() if k not in _CSV_IDENTITY} for row in rows]


def study(client: TestClient, study_id: int) -> dict[str, Any]:
    """The study (StudyOut)."""
    return client.get(f"/api/studies/{study_id}").json()


def settled(client: TestClient, study_id: int) -> tuple[Any, ...]:
    """What a study's results made of it: state, counts, progress, best value and point."""
    s = study(client, study_id)
    best = s["best"] or {}
    point = (best.get("value"), best.get("alpha"), best.get("eps"))
    return s["state"], s["counts"], s["progress"], point, s["finished_at"] is not None


def test_a_batch_records_each_item_as_the_single_route_does(client: TestClient) -> None:
    one, many = (
        create(client, "one", n_alpha=2, n_eps=3),
        create(client, "many", n_alpha=2, n_eps=3),
    )
    single = lease(client, study_id=one)
    for trial in single["trials"]:
        body = result_of(single["token"], trial["number"])
        response = client.post(f"/api/trials/{trial['trial_id']}/result", json=body)
        assert response.status_code == 200, response.text
    batched = lease(client, study_id=many)
    items = [
        {"trial_id": t["trial_id"], "result": result_of(batched["token"], t["number"])}
        for t in batched["trials"]
    ]
    response = post_batch(client, items)
    assert response.status_code == 200, response.text
    acks = response.json()["items"]
    assert [(a["trial_id"], a["status"], a["state"]) for a in acks] == [
        (t["trial_id"], 200, "complete") for t in batched["trials"]
    ]
    got = recorded(client, many)
    assert got == recorded(client, one) and len(got) == 6
    for trial in got:
        n = trial["number"]
        assert trial["state"] == "complete" and trial["numerics"] == f"cpu fp32, tf32 off, run {n}"
        assert trial["seed_values"] == [1.0 + n, 2.0 + n] and trial["value"] == 1.5 + n
        assert trial["seed_test_values"] == [2.0 + n, 3.0 + n] and trial["chance"] == 90.0
        assert trial["curve"] == [3.0 + n, 2.0 + n] and trial["seconds"] == 0.25 * (n + 1)
    rows = csv_rows(client, many)
    assert rows == csv_rows(client, one)
    assert [r["numerics"] for r in rows] == [f"cpu fp32, tf32 off, run {t['number']}" for t in got]
    assert rows[0]["seed_values"] == "[1.0, 2.0]"
    assert settled(client, many) == settled(client, one)
    assert settled(client, many)[0] == "done" and settled(client, many)[3][0] == 1.5


def test_a_mixed_batch_answers_each_item_and_records_the_valid_ones(
    client: TestClient,
) -> None:
    sid = create(client, "mixed", n_alpha=1, n_eps=4)
    gone = create(client, "gone", n_alpha=1, n_eps=1)
    doomed = lease(client, k=1, study_id=gone)
    assert client.delete(f"/api/studies/{gone}").status_code == 204
    got = lease(client, k=4, study_id=sid)
    t = [trial["trial_id"] for trial in got["trials"]]
    token = got["token"]
    items = [
        {"trial_id": t[0], "result": {"token": token, "value": 2.0, "numerics": "first"}},
        {
            "trial_id": doomed["trials"][0]["trial_id"],
            "result": {"token": doomed["token"], "value": 1.0},
        },
        {"trial_id": 2_000_000, "result": {"token": token, "value": 1.0}},
        {"trial_id": t[1], "result": {"token": "w" * 32, "value": 1.0}},
        {"trial_id": t[2], "result": {"token": token, "test_value": 1.0}},
        {"trial_id": "x", "result": {"token": token, "value": 1.0}},
        {"trial_id": t[3], "result": {"token": token, "value": 3.0, "curve": [4.0, 3.0]}},
    ]
    response = post_batch(client, items)
    assert response.status_code == 200, response.text
    acks = response.json()["items"]
    assert [(a["trial_id"], a["status"]) for a in acks] == [
        (t[0], 200),
        (doomed["trials"][0]["trial_id"], 404),
        (2_000_000, 404),
        (t[1], 409),
        (t[2], 422),
        (None, 422),
        (t[3], 200),
    ]
    assert acks[0]["state"] == acks[6]["state"] == "complete"
    assert all(a["state"] is None for a in acks[1:6])
    missing = acks[4]["detail"]
    assert isinstance(missing, list) and any("value" in str(issue["loc"]) for issue in missing)
    assert any(list(issue["loc"][:3]) == ["body", "items", 4] for issue in missing)
    assert any("trial_id" in str(issue["loc"]) for issue in acks[5]["detail"])
    assert isinstance(acks[3]["detail"], str) and acks[3]["detail"]
    by_id = {trial["id"]: trial for trial in trials(client, sid)}
    assert (by_id[t[0]]["state"], by_id[t[0]]["value"], by_id[t[0]]["numerics"]) == (
        "complete",
        2.0,
        "first",
    )
    assert (by_id[t[3]]["state"], by_id[t[3]]["curve"]) == ("complete", [4.0, 3.0])
    assert by_id[t[1]]["state"] == by_id[t[2]]["state"] == "leased"  # refused: left as it was
    assert by_id[t[1]]["value"] is None and by_id[t[2]]["value"] is None
    assert study(client, sid)["best"]["value"] == 2.0
    assert study(client, sid)["counts"] == {"complete": 2, "leased": 2}


def test_the_single_route_and_a_batch_word_an_invalid_result_alike(client: TestClient) -> None:
    sid = create(client, "words", n_alpha=1, n_eps=2)
    got = lease(client, k=2, study_id=sid)
    first, second = (trial["trial_id"] for trial in got["trials"])
    bad = {"token": got["token"], "value": 1.0, "seed_values": [1.0, 3.0]}  # not their mean
    single = client.post(f"/api/trials/{first}/result", json=bad)
    assert single.status_code == 422
    batch = post_batch(client, [{"trial_id": second, "result": bad}]).json()["items"]
    assert batch[0]["status"] == 422
    words = [issue["msg"] for issue in single.json()["detail"]]
    assert [issue["msg"] for issue in batch[0]["detail"]] == words and "mean" in words[0]


def test_a_second_delivery_of_a_batch_is_refused_and_counts_nothing_twice(
    client: TestClient,
) -> None:
    sid = create(client, "twice", n_alpha=2, n_eps=2)
    got = lease(client, k=4, study_id=sid)
    items = [
        {"trial_id": trial["trial_id"], "result": result_of(got["token"], trial["number"])}
        for trial in got["trials"]
    ]
    assert {a["status"] for a in post_batch(client, items).json()["items"]} == {200}
    before, state = recorded(client, sid), settled(client, sid)
    again = post_batch(client, [*items, *items])  # twice in one batch, too
    assert again.status_code == 200, again.text
    acks = again.json()["items"]
    assert [a["status"] for a in acks] == [409] * 8
    assert all("drop this report" in a["detail"] for a in acks)
    assert recorded(client, sid) == before and settled(client, sid) == state
    assert state[1] == {"complete": 4}


def test_an_item_twice_in_one_batch_is_recorded_once(client: TestClient) -> None:
    sid = create(client, "dup", n_alpha=1, n_eps=2)
    got = lease(client, k=2, study_id=sid)
    first = got["trials"][0]["trial_id"]
    items = [
        {"trial_id": first, "result": {"token": got["token"], "value": 5.0}},
        {"trial_id": first, "result": {"token": got["token"], "value": 1.0}},
    ]
    acks = post_batch(client, items).json()["items"]
    assert [a["status"] for a in acks] == [200, 409]
    (trial,) = [t for t in trials(client, sid) if t["id"] == first]
    assert trial["value"] == 5.0 and study(client, sid)["best"]["value"] == 5.0


@pytest.mark.parametrize("tuner", ["grid", "random", "tpe"])
def test_a_batch_settles_studies_as_one_by_one_delivery_does(
    client: TestClient, tuner: str
) -> None:
    """Each pair of equal studies: one delivered a result per POST, the other (two studies
    at once, items interleaved) in batches; best values, counts and completion agree."""
    spec = {"n_alpha": 3, "n_eps": 3, "tuner": {"name": tuner, "seed": 5}}
    if tuner != "grid":
        spec["budget"] = 5
    one = create(client, "one", **spec)
    batched = [create(client, f"batched{k}", **spec) for k in range(2)]

    def value(trial: dict[str, Any]) -> float:
        return 10.0 + 3 * (trial["alpha"] * 1e4 % 7) + trial["eps"] * 1e8 % 5

    for _ in range(20):  # a tuner may ask in rounds: lease until nothing is left
        got = lease(client, k=4, study_id=one)
        if not got["trials"]:
            break
        for trial in got["trials"]:
            body = {"token": got["token"], "value": value(trial)}
            response = client.post(f"/api/trials/{trial['trial_id']}/result", json=body)
            assert response.status_code == 200, response.text
    for _ in range(20):
        leases = [lease(client, k=4, study_id=sid) for sid in batched]
        if not any(got["trials"] for got in leases):
            break
        pairs = zip_longest(*([(got, t) for t in got["trials"]] for got in leases))
        items = [
            {"trial_id": t["trial_id"], "result": {"token": got["token"], "value": value(t)}}
            for pair in pairs
            for got, t in filter(None, pair)
        ]
        acks = post_batch(client, items).json()["items"]
        assert {a["status"] for a in acks} == {200}
    expected = settled(client, one)
    assert expected[0] == "done" and expected[3][0] is not None
    for sid in batched:
        assert settled(client, sid) == expected
        values = [t["value"] for t in trials(client, sid) if t["value"] is not None]
        assert study(client, sid)["best"]["value"] == min(values)


def test_a_batch_of_more_than_a_lease_holds_is_refused_whole(client: TestClient) -> None:
    sid = create(client, "big", n_alpha=1, n_eps=1)
    got = lease(client, k=1, study_id=sid)
    item = {
        "trial_id": got["trials"][0]["trial_id"],
        "result": {"token": got["token"], "value": 1.0},
    }
    too_many = post_batch(client, [item] * (MAX_LEASE_TRIALS + 1))
    assert too_many.status_code == 422 and "items" in str(too_many.json()["detail"])
    empty = post_batch(client, [])
    assert empty.status_code == 422 and "items" in str(empty.json()["detail"])
    assert client.post("/api/trials/results", json={}).status_code == 422
    assert client.post("/api/trials/results", json={"items": [item], "extra": 1}).status_code == 422
    assert trials(client, sid)[0]["state"] == "leased"  # nothing recorded
    at_most = post_batch(client, [item] * MAX_LEASE_TRIALS)  # the limit itself is taken
    assert at_most.status_code == 200
    assert [a["status"] for a in at_most.json()["items"][:2]] == [200, 409]


def test_a_batch_over_the_body_limit_gets_413(database_url: str) -> None:
    with TestClient(app_for(database_url, lease_seconds=30, max_body_bytes=4096)) as client:
        sid = create(client, "limit", n_alpha=1, n_eps=2)
        got = lease(client, k=2, study_id=sid)
        curve = [1.0 + k / 1000 for k in range(400)]  # ~ 5 kB per item
        items = [
            {
                "trial_id": t["trial_id"],
                "result": {"token": got["token"], "value": 1.0, "curve": curve},
            }
            for t in got["trials"]
        ]
        response = post_batch(client, items)
        assert response.status_code == 413 and "too large" in response.json()["detail"]
        assert {t["state"] for t in trials(client, sid)} == {"leased"}
        small = [{**item, "result": {**item["result"], "curve": curve[:10]}} for item in items]
        assert [a["status"] for a in post_batch(client, small).json()["items"]] == [200, 200]


@pytest.mark.parametrize("tuner", ["grid", "random", "tpe"])
def test_skip_studies_leases_only_the_other_studies(client: TestClient, tuner: str) -> None:
    spec: dict[str, Any] = {"n_alpha": 2, "n_eps": 2, "tuner": {"name": tuner, "seed": 3}}
    if tuner != "grid":
        spec["budget"] = 4
    skipped, kept = create(client, "skipped", **spec), create(client, "kept", **spec)
    leased: list[dict[str, Any]] = []
    for _ in range(10):
        got = lease(client, k=8, skip_studies=[skipped])
        if not got["trials"]:
            break
        leased += got["trials"]
    assert leased and {t["study_id"] for t in leased} == {kept}
    ids = {t["trial_id"] for t in leased}
    assert len(ids) == len(leased) and (len(ids) == 4 or tuner == "tpe")  # TPE: in flight ≤ 1
    assert lease(client, k=8, skip_studies=[skipped, kept])["trials"] == []
    left = trials(client, skipped)  # a tuner was never asked for the skipped study's points
    assert all(t["state"] == "queued" for t in left) and (tuner == "grid") == bool(left)
    rest = lease(client, k=8)  # without the skip: the skipped study's trials
    assert rest["trials"] and {t["study_id"] for t in rest["trials"]} == {skipped}


def test_skip_studies_is_bounded(client: TestClient) -> None:
    sid = create(client, "bounded", n_alpha=1, n_eps=1)
    ids = list(range(1000, 1000 + MAX_SKIP_STUDIES))
    assert lease(client, skip_studies=ids)["trials"][0]["study_id"] == sid  # the limit itself
    too_many = client.post("/api/leases", json={"worker_id": "w", "skip_studies": [*ids, 5000]})
    assert too_many.status_code == 422 and "skip_studies" in str(too_many.json()["detail"])
    for bad in ([0], ["x"], [2**31]):
        response = client.post("/api/leases", json={"worker_id": "w", "skip_studies": bad})
        assert response.status_code == 422, bad


def test_an_item_under_an_expired_lease_gets_409_and_the_rest_are_recorded(
    database_url: str,
) -> None:
    with TestClient(app_for(database_url, lease_seconds=0.6)) as client:
        old, new = (
            create(client, "old", n_alpha=1, n_eps=1),
            create(client, "new", n_alpha=1, n_eps=1),
        )
        stale = lease(client, k=1, study_id=old)
        time.sleep(0.8)  # past the lease
        live = lease(client, k=1, study_id=new)
        items = [
            {
                "trial_id": got["trials"][0]["trial_id"],
                "result": {"token": got["token"], "value": 2.0},
            }
            for got in (stale, live)
        ]
        acks = post_batch(client, items).json()["items"]
        assert [a["status"] for a in acks] == [409, 200] and "expired" in acks[0]["detail"]
        assert trials(client, old)[0]["value"] is None and study(client, old)["best"] is None
        assert settled(client, new)[0] == "done"
