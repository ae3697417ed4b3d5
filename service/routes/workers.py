"""Workers known to the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.db import Database
from service.deps import get_db
from service.models import utcnow
from service.repositories import workers
from studies.schemas import WorkerOut

router = APIRouter(prefix="/api/workers", tags=["workers"])


@router.get("")
def list_workers(db: Annotated[Database, Depends(get_db)]) -> list[WorkerOut]:
    """Workers, most recently seen first."""
    with db.read() as conn:
        return workers.list_workers(conn, utcnow())
