"""Async database access: one engine per service, built in lifespan, SQLite or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, MetaData, String, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
SQLITE_READERS = 4
# A pooled connection idle this long is pinged before use (a restarted server or a proxy may
# have closed it); pinging every checkout would add a round trip to every request.
PING_IF_IDLE_S = 10.0


def service_metadata() -> MetaData:
    """Return a MetaData with our constraint naming convention (stable migration names)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal stored as text with a fixed scale: SQLite has no exact NUMERIC."""

    impl = String(40)
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.quantum = Decimal(1).scaleb(-scale)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return format(Decimal(value).quantize(self.quantum), "f")

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module would only BEGIN before the first write and treat a SAVEPOINT outside
    # a transaction as a transaction of its own (its RELEASE commits). We begin ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "busy_timeout=10000",
        "foreign_keys=ON",
        "synchronous=NORMAL",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Open every transaction explicitly, so SAVEPOINTs nest inside it and roll back with it."""
    connection.exec_driver_sql("BEGIN")


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # each SELECT sees the last committed state
    cursor = dbapi_connection.cursor()
    for pragma in ("busy_timeout=10000", "query_only=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _mark_returned(_dbapi_connection: Any, record: Any, *_: Any) -> None:
    record.info["returned_at"] = time.monotonic()


def _ping_when_idle(dialect: Dialect) -> Any:
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("returned_at", time.monotonic()) < PING_IF_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception:
            raise DisconnectionError("stale pooled connection") from None  # the pool retries

    return checkout


def _is_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")


def build_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create the engine for `url`; SQLite gets WAL and a single writer connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=30)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
    )
    event.listen(engine.sync_engine, "connect", _mark_returned)
    event.listen(engine.sync_engine, "checkin", _mark_returned)
    event.listen(engine.sync_engine, "checkout", _ping_when_idle(engine.sync_engine.dialect))
    return engine


def build_read_engine(url: str, writer: AsyncEngine) -> AsyncEngine:
    """Return the engine for read-only requests.

    SQLite (a file): a few read-only connections of their own, which WAL lets read while the
    one writer writes. PostgreSQL: the writer's pool in autocommit, so a one-statement read
    costs no BEGIN and no COMMIT round trip. An in-memory SQLite database has one connection.
    """
    if _is_sqlite_file(url):
        engine = create_async_engine(url, pool_size=SQLITE_READERS, max_overflow=0, pool_timeout=30)
        event.listen(engine.sync_engine, "connect", _sqlite_reader_pragmas)
        return engine
    if writer.dialect.name == "postgresql":
        return writer.execution_options(isolation_level="AUTOCOMMIT")
    return writer


class Database:
    """An engine and its session factory, owned by one app's lifespan."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine = build_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = build_read_engine(url, self.engine)
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        """Return `sqlite` or `postgresql`."""
        return self.engine.dialect.name

    async def ping(self) -> None:
        """Run a trivial query; raises when the database is unreachable."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def migration_head(self) -> str | None:
        """Return the applied Alembic revision, or None before the first migration."""
        async with self.engine.connect() as connection:
            try:
                row = await connection.execute(text("SELECT version_num FROM alembic_version"))
                return row.scalar_one_or_none()
            except Exception:
                return None

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.read_engine.sync_engine.pool is not self.engine.sync_engine.pool:
            await self.read_engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits when the endpoint succeeds and rolls back otherwise."""
    database: Database = request.app.state.db
    async with database.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session for a request that only reads, one statement at a time (no transaction).

    Use it only where one statement answers the request: statements of one request may see
    different committed states, and writing through it fails.
    """
    database: Database = request.app.state.db
    async with database.read_sessionmaker() as session:
        yield session


# "function" scope: the commit happens before the response is sent, so a 2xx means stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
