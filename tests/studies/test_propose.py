"""The pure propose step of server-side tuners: history records in, proposals out, no database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from studies.specs import StudySpec
from studies.tuners.propose import (
    Ask,
    Kind,
    Proposal,
    Proposals,
    Record,
    Status,
    ask_cap,
    propose,
)

N = 3


def _spec(tuner: dict, space: dict | None = None, budget: int = 30) -> StudySpec:
    data = {"name": "s", "task": "mnist1d-mlp", "optimizer": "adam", "tuner": tuner}
    data["budget"] = budget
    if space is not None:
        data["space"] = space
    return StudySpec.model_validate(data)


SMALL_GRID = {"alphas": [1e-4, 1e-3, 1e-2, 1e-1], "epsilons": [1e-8, 1e-6, 1e-4, 1e-2]}
#: A study and the number of asks of its history.
CASES = {
    "tpe": (_spec({"name": "tpe", "seed": 5, "parallelism": 4}, SMALL_GRID, 14), 4),
    "gld": (_spec({"name": "gld", "seed": 5}), 3),  # the paper grid
}
#: The proposals (kind, i_alpha, j_eps, source_id, source_index) the server's ask made
#: before it was split into propose + write, on the same histories.
EXPECTED = {
    "tpe": [
        ("train", 3, 1, None, None),
        ("copy", 3, 2, 16, None),
        ("copy", 3, 2, 16, None),
        ("wait", 3, 3, 14, None),
    ],
    "gld": [("train", 9, 16, None, None), ("train", 10, 19, None, None)],
}


def _value(p: Proposal) -> float:
    assert p.i_alpha is not None and p.j_eps is not None
    return (p.i_alpha - 12) ** 2 + 0.5 * (p.j_eps - 6) ** 2 + 0.1 * p.i_alpha * p.j_eps


def ask_for(spec: StudySpec, records: list[Record]) -> Ask:
    """The server's ask after `records` (every record was one ask)."""
    trainings = sum(not r.repeat for r in records)
    assert spec.budget is not None
    return Ask(n=N, budget_left=spec.budget - trainings, asks_left=ask_cap(spec) - len(records))


def case(name: str) -> tuple[StudySpec, list[Record]]:
    """A seeded history of asks: trainings valued (the second failed) but the first of the
    last ask, still pending; copies take their original's value, waits are pending."""
    spec, rounds = CASES[name]
    seed = spec.tuner.seed
    assert seed is not None
    records: list[Record] = []
    for round_ in range(rounds):
        last = round_ == rounds - 1
        first_id = len(records) + 1
        for offset, p in enumerate(propose(spec, seed, records, ask_for(spec, records)).items):
            rid = first_id + offset
            value = None
            if p.kind == Kind.train:
                status = Status.pending if last and offset == 0 else Status.valued
                if rid == 2:
                    status = Status.failed
                value = _value(p) if status == Status.valued else None
            elif p.kind == Kind.copy:
                status = Status.valued
                value = next(r.value for r in records if r.id == p.source_id)
            else:
                status = Status.pending
            records.append(
                Record(rid, status, p.params, value, p.attrs, repeat=p.kind != Kind.train)
            )
    return spec, records


def _shape(
    proposals: Proposals,
) -> list[tuple[str, int | None, int | None, int | None, int | None]]:
    return [
        (p.kind.value, p.i_alpha, p.j_eps, p.source_id, p.source_index) for p in proposals.items
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_proposals_as_the_server_made_before(name: str) -> None:
    spec, records = case(name)
    assert spec.tuner.seed is not None
    got = propose(spec, spec.tuner.seed, records, ask_for(spec, records))
    assert _shape(got) == EXPECTED[name]
    again = propose(spec, spec.tuner.seed, records, ask_for(spec, records))
    assert again == got  # pure: the same records give the same proposals


def test_copies_and_waits_name_their_originals() -> None:
    spec, records = case("tpe")
    by_id = {r.id: r for r in records}
    kinds = {r.status for r in records}
    assert kinds == {Status.valued, Status.pending, Status.failed}
    got = propose(spec, 5, records, ask_for(spec, records)).items
    for p in got:
        if p.kind == Kind.copy:
            assert p.source_id is not None and by_id[p.source_id].status == Status.valued
            assert by_id[p.source_id].params == p.params and not by_id[p.source_id].repeat
        elif p.kind == Kind.wait and p.source_id is not None:
            assert by_id[p.source_id].status == Status.pending
            assert by_id[p.source_id].params == p.params
        elif p.kind == Kind.wait:
            assert p.source_index is not None and got[p.source_index].params == p.params
            assert got[p.source_index].kind == Kind.train


def test_the_limits_hold() -> None:
    spec, records = case("tpe")
    flying = sum(r.status == Status.pending for r in records)
    got = propose(spec, 5, records, Ask(n=10, budget_left=10, asks_left=1000))
    in_flight = flying + sum(p.kind != Kind.copy for p in got.items)
    assert got.asks and in_flight <= 4  # parallelism 4
    assert propose(spec, 5, records, Ask(n=10, budget_left=0, asks_left=1000)).asks == 0
    assert propose(spec, 5, records, Ask(n=10, budget_left=10, asks_left=0)).asks == 0
    assert (
        propose(spec, 5, records, Ask(n=10, budget_left=10, asks_left=1000), max_asks=1).asks == 1
    )
    fresh = propose(spec, 5, [], Ask(n=2, budget_left=30, asks_left=1000))
    assert fresh.trainings == 2 and all(p.kind == Kind.train for p in fresh.items)


def test_propose_needs_no_database_or_server() -> None:
    code = (
        "import sys, studies.tuners.propose\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'service', 'torch')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
