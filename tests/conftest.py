"""Test fixtures: every test runs against SQLite and against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.signing import sign
from leadflow.migrate import upgrade
from leadflow.models import Base

PG_ADMIN_DSN = os.environ.get(
    "LEADFLOW_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{dbname}"


async def _pg_available() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    await conn.close()
    return None


async def create_pg_database() -> str:
    name = f"leadflow_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def pg_or_skip() -> None:
    problem = await _pg_available()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {problem}")
    pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN} ({problem}); PostgreSQL tests skipped")


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
    db = Database(_pg_url(name), pool_size=20)
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
    return Settings(database_url=db.url, admin_token=ADMIN_TOKEN, base_url="http://testserver")


@pytest.fixture
async def client(
    settings: Settings, clock: ManualClock, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def make_account(client: httpx.AsyncClient, name: str = "Acme Shop") -> dict[str, Any]:
    response = await client.post(
        "/v1/admin/accounts",
        json={"name": name},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def account(client: httpx.AsyncClient) -> dict[str, Any]:
    return await make_account(client)


@pytest.fixture
async def other_account(client: httpx.AsyncClient) -> dict[str, Any]:
    return await make_account(client, "Other Shop")


def auth(account: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['api_key']}"}


def signed_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }


def event_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "checkout.abandoned",
        "occurred_at": "2026-01-15T11:00:00Z",
        "reference": "chk_1",
        "customer": {
            "email": "Jane@Example.com",
            "first_name": "Jane",
            "last_name": "Doe",
            "language": "de",
            "country": "DE",
            "timezone": "Europe/Berlin",
        },
        "products": [{"id": "sku-1", "name": "Pro plan", "quantity": 2, "unit_price": "24.50"}],
        "amount": "49.00",
        "currency": "EUR",
        "recovery_url": "https://shop.example.com/recover/chk_1",
        "attributes": {"utm_source": "newsletter"},
    }
    body.update(overrides)
    return body


async def post_event(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    body: dict[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    clock: ManualClock | None = None,
    path: str = "events",
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if timestamp is None and clock is not None:
        timestamp = int(clock.now().timestamp())
    headers = signed_headers(account["webhook_secret"], raw, msg_id=msg_id, timestamp=timestamp)
    return await client.post(f"/v1/webhooks/{account['id']}/{path}", content=raw, headers=headers)
