"""The Alembic scripts and the models agree, and migrate both ways on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from leadflow.kit.db import Database
from leadflow.kit.migrate import current_revision, downgrade, head_revision, upgrade
from leadflow.models import Base
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of its own, so migrating it down cannot disturb other tests."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
        yield db
        await db.dispose()
        return
    await pg_or_skip()
    name = await create_pg_database()
    db = Database(pg_url(name))
    try:
        yield db
    finally:
        await db.dispose()
        await drop_pg_database(name)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade(fresh_db: Database) -> None:
    await upgrade(fresh_db.engine)
    assert await current_revision(fresh_db.engine) == head_revision()
    async with fresh_db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set(Base.metadata.tables)

    await downgrade(fresh_db.engine, "base")
    assert await current_revision(fresh_db.engine) is None
    async with fresh_db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()

    await upgrade(fresh_db.engine)
    assert await current_revision(fresh_db.engine) == head_revision()


async def test_models_match_migrations(fresh_db: Database) -> None:
    await upgrade(fresh_db.engine)
    async with fresh_db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], f"models and migrations disagree; write a migration for: {diff}"


async def test_stepping_down_and_up_again_keeps_the_rows_that_refer_to_accounts(
    fresh_db: Database,
) -> None:
    """SQLite rebuilds a table to alter it; with foreign keys on, dropping the old
    ``accounts`` would cascade to every lead. Migrations run with them off, then checked."""
    await upgrade(fresh_db.engine)
    async with fresh_db.engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, webhook_secret, link_secret, created_at,"
            " updated_at, lead_management_enabled, default_currency, timezone, min_delays,"
            " min_hours_between_emails)"
            " VALUES ('acc_1', 'Shop', 'whsec_x', 'link', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,"
            " true, 'EUR', 'UTC', '{}', 12)"
        )
        await conn.exec_driver_sql(
            "INSERT INTO leads (id, account_id, source_type, reference, status, email,"
            " products, attributes, captured_at, last_event_at, created_at, updated_at)"
            " VALUES ('lead_1', 'acc_1', 'trial', 'r1', 'open', 'a@example.com', '[]', '{}',"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    await downgrade(fresh_db.engine, "0006")  # through every later change to accounts
    await upgrade(fresh_db.engine)
    async with fresh_db.engine.connect() as conn:
        leads = (await conn.exec_driver_sql("SELECT id FROM leads")).scalars().all()
        accounts = (await conn.exec_driver_sql("SELECT id FROM accounts")).scalars().all()
    assert (accounts, leads) == (["acc_1"], ["lead_1"])
