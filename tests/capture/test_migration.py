"""Migration 0014 on an account that existed before it: it gets a publishable key and the
built-in "Subscribers" group, as a new account does; stepping down takes both away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leadflow.kit.db import Database
from leadflow.kit.migrate import downgrade, upgrade
from tests.support.database import create_pg_database, drop_pg_database, pg_or_skip, pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
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


async def test_an_existing_account_gets_a_key_and_the_subscribers_group(fresh_db):
    await upgrade(fresh_db.engine, "0013")
    async with fresh_db.engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, webhook_secret, link_secret, created_at,"
            " updated_at, lead_management_enabled, default_currency, timezone, min_delays,"
            " min_hours_between_emails) VALUES"
            " ('acc_1', 'Shop', 'whsec_x', 'link', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, true,"
            " 'EUR', 'UTC', '{}', 12),"
            " ('acc_2', 'Shop', 'whsec_y', 'link', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, true,"
            " 'EUR', 'UTC', '{}', 12)"
        )
    await upgrade(fresh_db.engine, "0014")
    async with fresh_db.engine.connect() as conn:
        keys = (
            await conn.exec_driver_sql("SELECT publishable_key FROM accounts ORDER BY id")
        ).scalars()
        groups = (
            await conn.exec_driver_sql(
                "SELECT account_id, name, position FROM lead_groups WHERE key = 'opt_in'"
                " ORDER BY account_id"
            )
        ).all()
    found = list(keys)
    assert all(k.startswith("pk_") for k in found) and len(set(found)) == 2
    assert [tuple(g) for g in groups] == [("acc_1", "Subscribers", 4), ("acc_2", "Subscribers", 4)]
    await downgrade(fresh_db.engine, "0013")
    async with fresh_db.engine.connect() as conn:
        left = (await conn.exec_driver_sql("SELECT count(*) FROM lead_groups")).scalar()
    assert left == 0
