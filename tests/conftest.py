"""Test fixtures: every test runs against SQLite and against a real PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.migrate import upgrade
from leadflow.kit.secrets import Keyring, use_keyring
from leadflow.models import Base
from tests.support.api import (
    ADMIN_TOKEN,
    BASE_URL,
    SMALL_BATCH_LIMIT,
    SMALL_BODY_LIMIT,
    TEST_SECRET_KEY,
    app_client,
    make_account,
)
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url

pytest_plugins = ["tests.fixtures.mail"]

# The envelope key of the secrets at rest, for every app, worker and subprocess of the tests.
os.environ.setdefault("LEADFLOW_SECRET_KEY", TEST_SECRET_KEY)
use_keyring(Keyring.from_text(os.environ["LEADFLOW_SECRET_KEY"]))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Any:
    """A test that runs ``leadflow``'s ``main()`` in this process installs its log handler on
    the root logger; put the session's logging back, so later threads (an SMTP sink) do not
    write into the test output."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A migrated database per backend, shared by the session; emptied before each test."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "leadflow.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db.engine)
        yield db
        await db.dispose()
        return
    await pg_or_skip()
    name = await create_pg_database()
    db = Database(pg_url(name), pool_size=20)
    try:
        await upgrade(db.engine)
        yield db
    finally:
        await db.dispose()
        await drop_pg_database(name)


@pytest.fixture
def backend(database: Database) -> str:
    return database.dialect


async def _empty(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # DELETE, children first: on tables this small it is ~20x faster than TRUNCATE on
    # PostgreSQL (TRUNCATE pays a fixed cost per table), and it works the same on SQLite.
    async with db.engine.begin() as conn:
        for table in tables:
            await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608


@pytest.fixture
async def db(database: Database) -> Database:
    await _empty(database)
    return database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, admin_token=ADMIN_TOKEN, base_url=BASE_URL)


@pytest.fixture
async def client(
    settings: Settings, clock: ManualClock, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as c:
        yield c


@pytest.fixture
async def small_client(db: Database, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a small body limit (2 KiB) and at most 3 events per batch."""
    settings = Settings(
        database_url=db.url,
        admin_token=ADMIN_TOKEN,
        base_url=BASE_URL,
        max_body_bytes=SMALL_BODY_LIMIT,
        max_batch_events=SMALL_BATCH_LIMIT,
    )
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as c:
        yield c


@pytest.fixture
async def account(client: httpx.AsyncClient) -> dict[str, Any]:
    return await make_account(client)


@pytest.fixture
async def other_account(client: httpx.AsyncClient) -> dict[str, Any]:
    return await make_account(client, "Other Shop")
