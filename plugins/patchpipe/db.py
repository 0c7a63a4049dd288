"""Where patchpipe keeps its tables, and how to open that database.

One declarative ``Base`` holds every patchpipe table (advisory store, ledger), so one
``create_schema`` creates them all. SQLite is the default; the code stays portable SQLAlchemy so
PostgreSQL can replace it by setting ``PATCHPIPE_DB``.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from patchpipe.errors import PatchpipeError

DB_URL_ENV = "PATCHPIPE_DB"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    """Declarative base shared by every patchpipe table."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type and hands back naive values; this stores UTC and always returns
    aware UTC datetimes, so comparisons never mix naive and aware values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; patchpipe stores aware UTC times")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def database_url() -> str:
    """``$PATCHPIPE_DB``, else SQLite at ``$AIRFLOW_HOME/patchpipe.db`` (creating AIRFLOW_HOME)."""
    configured = os.environ.get(DB_URL_ENV, "").strip()
    if configured:
        return configured
    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    airflow_home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{airflow_home / 'patchpipe.db'}"


def make_engine(url: str | None = None, **engine_options: Any) -> Engine:
    """An engine for ``url`` (default ``database_url()``), tuned for concurrent Airflow tasks."""
    parsed = _parse_url(url or database_url())
    try:
        engine = create_engine(parsed, **engine_options)
    except (NoSuchModuleError, ImportError) as exc:
        shown = parsed.render_as_string(hide_password=True)
        raise PatchpipeError(f"database {shown}: no driver installed for it ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine)
    return engine


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        # The text is not echoed: a malformed URL may still carry a password.
        raise PatchpipeError(
            f"database URL (from ${DB_URL_ENV} or the caller) is not a SQLAlchemy URL; "
            "expected e.g. sqlite:////path/to/patchpipe.db or postgresql+psycopg://user@host/db"
        ) from exc


def create_schema(engine: Engine) -> None:
    """Create every patchpipe table that does not exist yet."""
    # The table modules import Base from here, so they are imported late to register their tables.
    import patchpipe.advisories.store  # noqa: F401
    import patchpipe.ledger.models  # noqa: F401

    try:
        Base.metadata.create_all(engine)
    except OperationalError as error:
        where = engine.url.render_as_string(hide_password=True)
        raise PatchpipeError(f"cannot open the patchpipe database {where}: {error.orig}") from None


def _tune_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE for several writers at once.

    Several Airflow tasks write at once. WAL lets readers run beside a writer; the busy timeout
    makes a writer wait for the lock instead of failing. Python's sqlite3 starts transactions
    lazily and as DEFERRED: two transactions that read and then write can each hold a read lock
    and then fail at once with "database is locked" (the busy timeout does not apply to that lock
    upgrade). Taking the write lock at BEGIN (IMMEDIATE) turns that into an orderly wait.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
