"""Learning curves of selected trials (by default the study's best few)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from service.dashboard.query_values import id_list
from service.dashboard.templating import number, sci
from service.models import VALUED_STATES, Trial

MAX_SELECTED = 10
DEFAULT_SELECTED = 5


def parse_ids(values: Iterable[str]) -> list[int]:
    """Trial ids from query values ('12', '3,4'), distinct, at most `MAX_SELECTED`."""
    return id_list(values, MAX_SELECTED)


def best_ids(conn: Connection, study_id: int, n: int = DEFAULT_SELECTED) -> list[int]:
    """The `n` best finished trials of a study (some may carry no curve)."""
    return list(
        conn.execute(
            select(Trial.id)
            .where(
                Trial.study_id == study_id,
                Trial.state.in_(VALUED_STATES),
                Trial.source_trial_id.is_(None),
            )
            .order_by(Trial.value, Trial.number)
            .limit(n)
        ).scalars()
    )


def load(conn: Connection, study_id: int, ids: list[int]) -> list[dict[str, Any]]:
    """The curves of trials `ids` of the study (others ignored), labelled, in `ids` order."""
    if not ids:
        return []
    rows = {
        row.id: row
        for row in conn.execute(
            select(Trial.id, Trial.number, Trial.alpha, Trial.eps, Trial.value, Trial.curve).where(
                Trial.study_id == study_id, Trial.id.in_(ids)
            )
        ).all()
    }
    return [
        {
            "id": rows[i].id,
            "label": f"#{rows[i].number} α={sci(rows[i].alpha)} ε={sci(rows[i].eps)} "
            f"({number(rows[i].value)})",
            "curve": rows[i].curve or [],
        }
        for i in ids
        if i in rows
    ]
