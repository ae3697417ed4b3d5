"""The study page's trial table: sorted and paginated in SQL, one page at a time."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.orm import aliased

from service.dashboard.query_values import positive_int
from service.models import PENDING_STATES, Trial, TrialState

PAGE_SIZE = 50
SORTS: dict[str, Any] = {
    "number": Trial.training,
    "state": Trial.state,
    "alpha": Trial.alpha,
    "eps": Trial.eps,
    "value": Trial.value,
    "test_value": Trial.test_value,
    "seconds": Trial.seconds,
    "worker": Trial.worker_id,
    "finished": Trial.finished_at,
}
FILTERS: dict[str, tuple[str, ...]] = {
    "all": (),
    "finished": (TrialState.complete, TrialState.diverged, TrialState.failed),
    "pending": tuple(PENDING_STATES),
    **{state.value: (state.value,) for state in TrialState},
}
_REPEAT = aliased(Trial)
#: Repeat asks answered from this training (they are not rows of the table).
_REPEATS = (
    select(func.count())
    .select_from(_REPEAT)
    .where(_REPEAT.source_trial_id == Trial.id)
    .correlate(Trial)
    .scalar_subquery()
    .label("repeats")
)
COLUMNS = (
    Trial.id,
    Trial.number,
    Trial.state,
    Trial.alpha,
    Trial.eps,
    Trial.value,
    Trial.test_value,
    Trial.diverged,
    Trial.seconds,
    Trial.worker_id,
    Trial.attempts,
    Trial.finished_at,
    Trial.source_trial_id,
    Trial.progress_done,
    Trial.progress_total,
    Trial.training,
    _REPEATS,
)


@dataclass(frozen=True)
class TableQuery:
    """Which page of which trials, in which order (unknown values fall back to defaults)."""

    sort: str = "number"
    order: str = "desc"
    state: str = "all"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> TableQuery:
        """From URL query parameters, leniently: a bad value means its default."""
        sort = params.get("sort", cls.sort)
        order = params.get("order", cls.order)
        state = params.get("state", cls.state)
        return cls(
            sort=sort if sort in SORTS else cls.sort,
            order=order if order in ("asc", "desc") else cls.order,
            state=state if state in FILTERS else cls.state,
            page=positive_int(params.get("page"), 1),
        )

    def link(self, **changes: Any) -> str:
        """The query string of this view with some settings changed."""
        view = replace(self, **changes)
        return urlencode(
            {"sort": view.sort, "order": view.order, "state": view.state, "page": view.page}
        )

    def sort_link(self, column: str) -> str:
        """The query string sorting by `column` (flipping the order when already sorted)."""
        if column == self.sort:
            return self.link(order="asc" if self.order == "desc" else "desc", page=1)
        return self.link(
            sort=column, order="asc" if column in ("value", "test_value") else "desc", page=1
        )


@dataclass(frozen=True)
class TablePage:
    """One page of trials and where it lies among all of them."""

    query: TableQuery
    rows: list[Row[Any]]
    total: int

    @property
    def pages(self) -> int:
        """How many pages the filtered trials fill."""
        return max(1, math.ceil(self.total / PAGE_SIZE))


def trial_page(conn: Connection, study_id: int, query: TableQuery) -> TablePage:
    """The page of a study's trainings that `query` asks for (the last page when past the
    end); repeat asks are counted on their training, not listed."""
    where = [Trial.study_id == study_id, Trial.source_trial_id.is_(None)]
    states = FILTERS[query.state]
    if states:
        where.append(Trial.state.in_(states))
    total = conn.execute(select(func.count()).select_from(Trial).where(*where)).scalar_one()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if query.page > pages:
        query = replace(query, page=pages)
    column = SORTS[query.sort]
    key = column.asc() if query.order == "asc" else column.desc()
    tie = Trial.number.asc() if query.order == "asc" else Trial.number.desc()
    rows = conn.execute(
        select(*COLUMNS)
        .where(*where)
        .order_by(key.nulls_last(), tie)
        .limit(PAGE_SIZE)
        .offset((query.page - 1) * PAGE_SIZE)
    ).all()
    return TablePage(query, list(rows), total)
