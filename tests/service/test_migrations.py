"""The alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from service.db import make_engine
from service.migrations import alembic_config, current, upgrade
from service.models import SEED_COLUMNS, Base

HEAD = "0006"


def _matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def _trial_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("trials")}


def _downgrade(engine: Engine, revision: str) -> None:
    """Run alembic's downgrade to `revision` on `engine`."""
    config = alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
        conn.commit()


def _keeps_autoincrement(engine: Engine) -> None:
    """On SQLite, the rebuilt trials table still says AUTOINCREMENT (ids are never reused)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'trials'"))
            assert "AUTOINCREMENT" in sql.scalar_one()


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current(engine) == HEAD
        _matches_models(engine)
        indexes = {i["name"] for i in inspect(engine).get_indexes("trials")}
        assert {"ix_trials_queue", "ix_trials_lease_expiry", "ix_trials_study_id_state"} <= indexes
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert current(engine) == HEAD
    finally:
        engine.dispose()


def test_0002_adds_the_per_seed_columns_and_downgrades(database_url: str) -> None:
    """0002 adds the per-seed result columns; its downgrade drops them and keeps the rest
    (on SQLite the rebuilt table keeps AUTOINCREMENT: ids are never reused)."""
    engine = make_engine(database_url)
    try:
        assert set(SEED_COLUMNS) <= _trial_columns(engine)
        _downgrade(engine, "0001")
        assert current(engine) == "0001"
        columns = _trial_columns(engine)
        assert not set(SEED_COLUMNS) & columns and {"value", "test_value", "curve"} <= columns
        _keeps_autoincrement(engine)
        indexes = {i["name"] for i in inspect(engine).get_indexes("trials")}
        assert {"ix_trials_queue", "ix_trials_lease_expiry", "ix_trials_study_id_state"} <= indexes
        upgrade(engine=engine)
        assert current(engine) == HEAD and set(SEED_COLUMNS) <= _trial_columns(engine)
        _matches_models(engine)
    finally:
        engine.dispose()


def test_0004_adds_the_diagnostics_column_and_downgrades(database_url: str) -> None:
    """0004 adds trials.seed_diagnostics (NULL on stored trials); its downgrade drops only it."""
    engine = make_engine(database_url)
    try:
        _downgrade(engine, "0003")
        columns = _trial_columns(engine)
        assert "seed_diagnostics" not in columns and set(SEED_COLUMNS) <= columns
        _keeps_autoincrement(engine)
        upgrade(engine=engine)
        assert current(engine) == HEAD and "seed_diagnostics" in _trial_columns(engine)
        _matches_models(engine)
    finally:
        engine.dispose()


def test_0005_adds_the_worker_capabilities_and_downgrades(database_url: str) -> None:
    """0005 adds workers.capabilities (NULL on stored workers); its downgrade drops only it."""
    engine = make_engine(database_url)

    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("workers")}

    try:
        assert "capabilities" in columns()
        _downgrade(engine, "0004")
        assert "capabilities" not in columns() and {"id", "last_seen", "leases"} <= columns()
        upgrade(engine=engine)
        assert current(engine) == HEAD and "capabilities" in columns()
        _matches_models(engine)
    finally:
        engine.dispose()


def test_0006_adds_the_numerics_column_and_downgrades(database_url: str) -> None:
    """0006 adds trials.numerics (NULL on stored trials); its downgrade drops only it."""
    engine = make_engine(database_url)
    try:
        assert "numerics" in _trial_columns(engine)
        _downgrade(engine, "0005")
        columns = _trial_columns(engine)
        assert "numerics" not in columns and {"seed_diagnostics", "seconds"} <= columns
        _keeps_autoincrement(engine)
        upgrade(engine=engine)
        assert current(engine) == HEAD and "numerics" in _trial_columns(engine)
        _matches_models(engine)
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()
