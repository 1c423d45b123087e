"""Database plumbing shared by every domain: types, engine, sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, DateTime, MetaData, Numeric, Table, event, select
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from leadflow.kit.errors import not_found
from leadflow.kit.metrics import forget_pool, watch_pool

T = TypeVar("T")
M = TypeVar("M", bound="Base")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC, always returns aware UTC datetimes (SQLite returns naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; leadflow stores aware UTC datetimes only")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Money(TypeDecorator[Decimal]):
    """Exact decimal amounts. SQLite has no DECIMAL, so values travel as text there."""

    impl = Numeric(18, 4)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal("0.0001"))


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


# Rows per multi-row statement: far below PostgreSQL's 32,767 bind parameters (and SQLite's
# 32,766) for the widest table, large enough that a 1,000-event batch is a few statements.
ROWS_PER_STATEMENT = 500


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def table(model: type[Base]) -> Table:
    """The model's table, for Core statements on a hot path where no ORM object is needed
    (bulk inserts and updates skip the ORM's per-row bookkeeping)."""
    return cast(Table, model.__table__)


def insert_for(session: AsyncSession) -> Any:
    """The dialect's ``insert`` (both offer ``on_conflict_do_nothing/_update``)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {name!r}")


async def get_owned(
    session: AsyncSession, model: type[M], account_id: str, row_id: str, what: str
) -> M:
    """The account's row of ``model`` with ``row_id``; another account's row, or none, is a
    404 naming ``what`` (tenant isolation: ids of other accounts are never confirmed)."""
    row = (
        await session.execute(
            select(model).where(
                model.account_id == account_id,  # type: ignore[attr-defined]
                model.id == row_id,  # type: ignore[attr-defined]
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found(what)
    return row


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers work while one writer commits; busy_timeout makes
        # writers queue instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


class Database:
    """Owns the engine and hands out sessions; one per process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        watch_pool(self.engine)  # the pool gauges of /metrics
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Same pool, no transaction: a lone read costs one round trip, not BEGIN + COMMIT.
        self._readers = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block succeeds, rolls back otherwise."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads outside any transaction, each statement seeing the latest
        committed rows: for a look-up that precedes the real unit of work (an account
        before its webhook body is read). Reads only: with no transaction around it, a
        write would be kept at once, outside any unit of work."""
        async with self._readers() as session:
            yield session

    async def transaction(
        self, work: Callable[[AsyncSession], Awaitable[T]], attempts: int = 3
    ) -> T:
        """Run ``work`` in a unit of work of its own, retried from the start on a deadlock or
        serialization failure. For entry points that own their transaction and can re-run
        it (worker jobs, webhook intake); an API handler's transaction is the request's."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.session() as session:
                    return await work(session)
            except DBAPIError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        forget_pool(self.engine)
        await self.engine.dispose()


_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


# SQLSTATE classes meaning the server is away, not that the statement is wrong: connection
# exceptions (08xxx), and shutdown / cannot connect now (57P01-57P03).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or went away mid-request: try again later, not a bug."""
    if isinstance(exc, OSError | TimeoutError | sqlalchemy_exc.TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    if code.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    # asyncpg reports a dropped connection as ConnectionDoesNotExistError or an
    # InterfaceError "connection is closed", wrapped by SQLAlchemy's adapter.
    cause = getattr(orig, "__cause__", None) or orig
    return isinstance(cause, OSError | TimeoutError) or "connection" in type(cause).__name__.lower()


def is_retryable(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in _RETRYABLE_SQLSTATES
