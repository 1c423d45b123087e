"""/healthz (liveness) and /readyz (database reachable and migrated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.migrate import alembic_config, head_revision, upgrade
from tests.support.api import app_client
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url


async def readyz(db: Database) -> tuple[int, dict[str, str]]:
    app = create_app(Settings(database_url=db.url), clock=ManualClock(), db=db, auto_migrate=False)
    async with app_client(app) as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()


@pytest.fixture
async def empty_sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}")
    yield db
    await db.dispose()


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "detail": None}


async def test_healthz_needs_no_database(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    app = create_app(Settings(database_url=db.url), clock=ManualClock(), db=db, auto_migrate=False)
    try:
        async with app_client(app) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    finally:
        await db.dispose()


async def test_readyz_on_a_migrated_database(client):
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "detail": None}


async def test_health_endpoints_need_no_credentials(client):
    for path in ("/healthz", "/readyz"):
        response = await client.get(path, headers={"Authorization": "Bearer nonsense"})
        assert response.status_code == 200, (path, response.text)


async def test_readyz_is_503_on_a_never_migrated_sqlite_database(empty_sqlite):
    status, body = await readyz(empty_sqlite)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["detail"] == f"schema at None, expected {head_revision()}"

    # Migrating makes the same database ready.
    await upgrade(empty_sqlite.engine)
    status, body = await readyz(empty_sqlite)
    assert (status, body["status"]) == (200, "ok")


async def test_readyz_is_503_on_a_partly_migrated_database(empty_sqlite):
    script = ScriptDirectory.from_config(alembic_config())
    base = script.get_base()
    if base == head_revision():
        pytest.skip("only one migration exists")
    await upgrade(empty_sqlite.engine, base)
    status, body = await readyz(empty_sqlite)
    assert status == 503
    assert body == {
        "status": "unavailable",
        "detail": f"schema at {base}, expected {head_revision()}",
    }


async def test_readyz_is_503_on_a_never_migrated_postgresql_database():
    await pg_or_skip()
    name = await create_pg_database()
    db = Database(pg_url(name))
    try:
        status, body = await readyz(db)
        assert status == 503
        assert body["detail"] == f"schema at None, expected {head_revision()}"
    finally:
        await db.dispose()
        await drop_pg_database(name)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite+aiosqlite:///{tmp}/no/such/dir/x.db", id="sqlite-unopenable"),
        pytest.param("postgresql+asyncpg://postgres@127.0.0.1:1/leadflow", id="postgresql-down"),
    ],
)
async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path, url):
    db = Database(url.format(tmp=tmp_path))
    try:
        status, body = await readyz(db)
    finally:
        await db.dispose()
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["detail"].startswith("database: ")
    # The detail names the kind of failure, never the connection string.
    assert "postgres@" not in body["detail"]
    assert str(tmp_path) not in body["detail"]
