"""FastAPI dependencies: the app's database and settings."""

from __future__ import annotations

from fastapi import Request

from service.db import Database
from service.settings import Settings


async def get_db(request: Request) -> Database:
    """The app's database."""
    return request.app.state.db


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings
