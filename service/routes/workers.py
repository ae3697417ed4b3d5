"""Workers known to the service."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import READ, Db
from service.models import utcnow
from service.repositories import workers
from studies.schemas import WorkerOut

router = APIRouter(prefix="/api/workers", tags=["workers"], dependencies=READ)


@router.get("")
def list_workers(db: Db) -> list[WorkerOut]:
    """Workers, most recently seen first."""
    with db.read() as conn:
        return workers.list_workers(conn, utcnow())
