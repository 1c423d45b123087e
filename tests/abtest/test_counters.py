"""The per-variant A/B counters: kept in the transactions that enroll leads and record first
visits, exact under concurrency, and carried over from the rows by the migration."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from leadflow.abtest.counters import SHARDS, count_assigned, variant_counts
from leadflow.kit.db import Database
from leadflow.models import AbTestCounter, Enrollment, Visit
from tests.support.api import make_account
from tests.support.results import (
    ONE_STEP,
    ab_result,
    click_path,
    create_ab_campaign,
    leads_per_variant,
    new_lead,
    no_min_delays,
)


async def rows_per_variant(db: Database, campaign_id: str) -> dict[str, tuple[int, int]]:
    """(enrollments, visits) per variant, counted from the rows themselves."""
    async with db.session() as session:
        enrolled = dict(
            (
                await session.execute(
                    select(Enrollment.variant_id, func.count())
                    .where(Enrollment.campaign_id == campaign_id)
                    .group_by(Enrollment.variant_id)
                )
            ).all()
        )
        visited = dict(
            (
                await session.execute(
                    select(Visit.variant_id, func.count())
                    .where(Visit.campaign_id == campaign_id)
                    .group_by(Visit.variant_id)
                )
            ).all()
        )
    return {v: (enrolled.get(v, 0), visited.get(v, 0)) for v in {*enrolled, *visited}}


async def counters(db: Database, account_id: str, campaign_id: str) -> dict[str, tuple[int, int]]:
    async with db.session() as session:
        return await variant_counts(session, account_id, campaign_id)


async def test_counters_follow_enrollments_and_first_visits(
    client, account, clock, dispatcher, smtp_sink, db
):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(client, account, None, steps=ONE_STEP)
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 2, "B": 3})
    assert (await dispatcher.run_once()).sent == 5
    # Two clicks of the same lead are one unique visitor; a second lead of B visits too.
    for lead in (leads["B"][0], leads["B"][0], leads["B"][1], leads["A"][0]):
        clock.advance(minutes=1)
        response = await client.get(click_path(smtp_sink.messages, lead))
        assert response.status_code == 302

    expected = await rows_per_variant(db, campaign["id"])
    assert expected[ids["B"]][1] == 2 and expected[ids["A"]][1] == 1
    assert await counters(db, account["id"], campaign["id"]) == expected
    result = await ab_result(client, account, campaign["id"])
    figures = {
        v["variant_id"]: (v["leads_assigned"], v["unique_visitors"]) for v in result["variants"]
    }
    assert figures == expected


async def test_count_assigned_adds_many_variants_at_once(client, account, db):
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(client, account, None)
    a, b = ids["A"], ids["B"]
    for _ in range(40):
        async with db.session() as session:
            await count_assigned(
                session,
                account_id=account["id"],
                campaign_id=campaign["id"],
                variant_counts={a: 2, b: 1},
            )
    async with db.session() as session:
        await count_assigned(
            session, account_id=account["id"], campaign_id=campaign["id"], variant_counts={b: 0}
        )
        rows = (
            await session.execute(
                select(AbTestCounter.variant_id, func.count()).group_by(AbTestCounter.variant_id)
            )
        ).all()
    assert await counters(db, account["id"], campaign["id"]) == {a: (80, 0), b: (40, 0)}
    # Spread over a few rows per variant, never more than SHARDS.
    assert all(1 < n <= SHARDS for _, n in rows), rows
    # Another account reads nothing of it.
    other = await make_account(client, "Other Shop")
    assert await counters(db, other["id"], campaign["id"]) == {}


async def test_concurrent_enrollments_are_all_counted(client, account, clock, db, backend):
    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite: one writer)")
    await no_min_delays(client, account)
    campaign, _ids = await create_ab_campaign(client, account, None)
    await asyncio.gather(*(new_lead(client, account, clock) for _ in range(40)))
    expected = await rows_per_variant(db, campaign["id"])
    assert sum(n for n, _ in expected.values()) == 40
    assert await counters(db, account["id"], campaign["id"]) == expected


def carry_over_sql() -> str:
    path = Path(__file__).resolve().parents[2] / "migrations/versions/0008_ab_test_counters.py"
    spec = importlib.util.spec_from_file_location("migration_0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sql: str = module.CARRY_OVER
    return sql


async def test_the_migration_carries_existing_counts_over(client, account, clock, db, backend):
    """The counters of a database that had enrollments and visits before they existed are
    rebuilt from those rows by the migration's statement (here: after emptying them)."""
    await no_min_delays(client, account)
    campaign, _ids = await create_ab_campaign(client, account, None)
    for _ in range(12):
        await new_lead(client, account, clock)
    async with db.engine.begin() as conn:
        # A visit recorded before the counters existed.
        lead_id, variant_id = (
            await conn.execute(text("SELECT lead_id, variant_id FROM enrollments LIMIT 1"))
        ).one()
        values = {
            "acc": account["id"],
            "cmp": campaign["id"],
            "lead": lead_id,
            "var": variant_id,
            # As each database stores it (SQLite: naive UTC text).
            "now": clock.now() if backend == "postgresql" else clock.now().replace(tzinfo=None),
        }
        await conn.execute(
            text(
                "INSERT INTO messages (id, account_id, enrollment_id, lead_id, campaign_id,"
                " variant_id, step, status, to_email, subject, message_id_header, attempts,"
                " created_at, updated_at, sent_at) SELECT 'msg_1', account_id, id, lead_id,"
                " campaign_id, variant_id, 1, 'sent', 'a@example.com', 'Hi', '<m@x>', 1, :now,"
                " :now, :now"
                " FROM enrollments WHERE lead_id = :lead"
            ),
            values,
        )
        await conn.execute(
            text(
                "INSERT INTO visits (id, account_id, lead_id, campaign_id, variant_id,"
                " message_id, step, clicks, first_at, last_at) VALUES ('vis_1', :acc, :lead,"
                " :cmp, :var, 'msg_1', 1, 3, :now, :now)"
            ),
            values,
        )
        await conn.execute(text("DELETE FROM ab_test_counters"))
        await conn.execute(text(carry_over_sql()))
    expected = await rows_per_variant(db, campaign["id"])
    assert sum(n for n, _ in expected.values()) == 12
    assert expected[variant_id][1] == 1
    assert await counters(db, account["id"], campaign["id"]) == expected
    result = await ab_result(client, account, campaign["id"])
    figures = {
        v["variant_id"]: (v["leads_assigned"], v["unique_visitors"]) for v in result["variants"]
    }
    assert figures == expected
