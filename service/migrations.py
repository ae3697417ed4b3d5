"""Run the alembic migrations (``alembic/`` at the repository root) from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from service.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = ROOT / "alembic.ini"


def alembic_config() -> Config:
    """The project's alembic configuration (script location at the repository root)."""
    if not ALEMBIC_INI.is_file():
        raise RuntimeError(f"alembic.ini not found at {ALEMBIC_INI}; run from a source checkout")
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logging"] = False
    return config


def upgrade(
    url: str | None = None, *, engine: Engine | None = None, revision: str = "head"
) -> None:
    """Bring the database at `url` (or `engine`) to `revision`."""
    config = alembic_config()
    own = engine is None
    if engine is None:
        if url is None:
            raise ValueError("upgrade needs a database URL or an engine")
        engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
    finally:
        if own:
            engine.dispose()


def current(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
