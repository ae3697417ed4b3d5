"""FastAPI dependencies: the app's database and settings, and the token checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from service.auth import require_read, require_token
from service.db import Database
from service.settings import Settings


async def get_db(request: Request) -> Database:
    """The app's database."""
    return request.app.state.db


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


#: The app's database, as a route parameter.
Db = Annotated[Database, Depends(get_db)]
#: The app's settings, as a route parameter.
SettingsDep = Annotated[Settings, Depends(get_settings)]
#: Route dependencies of a write: the server's token as a bearer header, when it has one.
AUTH: list[Any] = [Depends(require_token)]
#: Router dependencies of reads: the token (header or dashboard cookie) when reads are protected.
READ: list[Any] = [Depends(require_read)]
