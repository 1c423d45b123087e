"""Stats at scale: one A/B campaign with 1,000,000 enrollments, 1,000,000 follow-ups, 100,000
checkout visitors and 100,000 conversions on PostgreSQL.

    python bench/stats_bench.py [--messages 1000000] [--conversions 100000] [--requests 50]
                                [--enrollments MESSAGES] [--visits CONVERSIONS]

Creates a throwaway database on LEADFLOW_BENCH_PG_DSN (default
postgresql://postgres@127.0.0.1:5432/postgres), fills it with generate_series, builds the
hourly counters and the A/B counters the way the worker and the enrolling transactions
maintain them, then times the stats and A/B endpoints through the real app (ASGI, no network)
and, for comparison, the same figures aggregated straight from the raw tables. Prints
p50 / p95 / max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from leadflow.accounts.service import create_account
from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.migrate import upgrade
from leadflow.kit.secrets import Keyring, generate_key, use_keyring

# The statement the migration that introduced the A/B counters fills them with.
CARRY_OVER = """
INSERT INTO ab_test_counters
    (campaign_id, variant_id, shard, account_id, leads_assigned, visitors)
SELECT campaign_id, variant_id, 0, max(account_id), sum(assigned), sum(visitors)
FROM (
    SELECT campaign_id, variant_id, account_id, count(*) AS assigned, 0 AS visitors
    FROM enrollments GROUP BY campaign_id, variant_id, account_id
    UNION ALL
    SELECT campaign_id, variant_id, account_id, 0 AS assigned, count(*) AS visitors
    FROM visits GROUP BY campaign_id, variant_id, account_id
) AS counted
GROUP BY campaign_id, variant_id
"""

ADMIN_DSN = os.environ.get("LEADFLOW_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 90

SEED_SQL = [
    # campaign with two variants
    """INSERT INTO campaigns (id, account_id, name, source, products, languages, countries, status,
           priority, created_at, updated_at)
       VALUES ('cmp_bench', :acc, 'Bench campaign', 'abandoned_checkout', '[]', '[]', '[]',
               'active', 0, now(), now())""",
    """INSERT INTO variants (id, account_id, campaign_id, name, weight, steps, created_at, updated_at)
       SELECT 'var_' || v, :acc, 'cmp_bench', v, 1,
              '[{"delay_seconds": 3600, "template": "abandoned_checkout/1"}]', now(), now()
       FROM unnest(ARRAY['A', 'B']) AS v""",
    # one lead and enrollment each (the first third of them got follow-ups 1-3)
    """INSERT INTO leads (id, account_id, source_type, reference, status, email, products, attributes,
           captured_at, last_event_at, created_at, updated_at)
       SELECT 'lead_' || i, :acc, 'abandoned_checkout', 'ref_' || i, 'open',
              'lead' || i || '@example.com', '[]', '{}',
              timestamptz :start + (i % (:days * 24)) * interval '1 hour',
              timestamptz :start, now(), now()
       FROM generate_series(1, :leads) AS i""",
    """INSERT INTO enrollments (id, account_id, lead_id, campaign_id, variant_id, state, next_step,
           next_due_at, attempts, created_at, updated_at)
       SELECT 'enr_' || i, :acc, 'lead_' || i, 'cmp_bench', CASE WHEN i % 2 = 0 THEN 'var_A'
              ELSE 'var_B' END, 'completed', 4, now(), 0, now(), now()
       FROM generate_series(1, :leads) AS i""",
    """INSERT INTO messages (id, account_id, enrollment_id, lead_id, campaign_id, variant_id, step,
           status, to_email, subject, message_id_header, attempts, created_at, updated_at, sent_at)
       SELECT 'msg_' || m, :acc, 'enr_' || l, 'lead_' || l, 'cmp_bench',
              CASE WHEN l % 2 = 0 THEN 'var_A' ELSE 'var_B' END, s, 'sent',
              'lead' || l || '@example.com', 'Subject', '<x>', 1, now(), now(),
              timestamptz :start + ((m::bigint * 7919) % (:days * 24 * 60)) * interval '1 minute'
       FROM generate_series(1, :messages) AS m,
            LATERAL (SELECT (m - 1) / 3 + 1 AS l, (m - 1) % 3 + 1 AS s) AS x""",
    """INSERT INTO events (id, account_id, source, external_id, type, occurred_at, received_at,
           raw_body, result)
       SELECT 'evt_' || i, :acc, 'generic', 'ext_' || i, 'order.completed', now(), now(), '{}', '{}'
       FROM generate_series(1, :conversions) AS i""",
    """INSERT INTO conversions (id, account_id, lead_id, event_id, campaign_id, variant_id,
           message_id, step, amount, currency, converted_at)
       SELECT 'cnv_' || i, :acc, 'lead_' || i, 'evt_' || i, 'cmp_bench',
              CASE WHEN i % 2 = 0 THEN 'var_A' ELSE 'var_B' END, 'msg_' || (i * 3 - 2), 1,
              (10 + i % 90)::numeric, CASE WHEN i % 5 = 0 THEN 'USD' ELSE 'EUR' END,
              timestamptz :start + ((i::bigint * 104729) % (:days * 24 * 60)) * interval '1 minute'
       FROM generate_series(1, :conversions) AS i""",
    # the counters the dispatcher and conversion crediting keep up to date as they go
    # unique checkout visitors, each through its lead's first follow-up
    """INSERT INTO visits (id, account_id, lead_id, campaign_id, variant_id, message_id, step,
           clicks, first_at, last_at)
       SELECT 'vis_' || i, :acc, 'lead_' || i, 'cmp_bench',
              CASE WHEN i % 2 = 0 THEN 'var_A' ELSE 'var_B' END, 'msg_' || (i * 3 - 2), 1, 1,
              now(), now()
       FROM generate_series(1, :visits) AS i""",
    """INSERT INTO stats_counters (account_id, campaign_id, variant_id, step, hour, currency,
           followups_sent, leads_targeted, conversions, revenue)
       SELECT account_id, campaign_id, variant_id, step, date_trunc('hour', sent_at), '',
              count(*), count(*) FILTER (WHERE step = 1), 0, 0
       FROM messages GROUP BY 1, 2, 3, 4, 5""",
    """INSERT INTO stats_counters (account_id, campaign_id, variant_id, step, hour, currency,
           followups_sent, leads_targeted, conversions, revenue)
       SELECT account_id, campaign_id, variant_id, step, date_trunc('hour', converted_at), currency,
              0, 0, count(*), sum(amount)
       FROM conversions GROUP BY 1, 2, 3, 4, 5, 6""",
    # the A/B counters the enrolling and visit-recording transactions keep
    CARRY_OVER,
    "ANALYZE",
]

DIRECT_SQL = """
SELECT m.step, count(*), count(*) FILTER (WHERE m.step = 1)
FROM messages m WHERE m.account_id = :acc AND m.status IN ('sent', 'unknown')
  AND m.sent_at >= :start AND m.sent_at < :end GROUP BY m.step;
"""
# What GET /v1/campaigns/{id}/ab-test used to count per request.
DIRECT_AB_SQL = [
    "SELECT variant_id, count(*) FROM enrollments WHERE campaign_id = 'cmp_bench' GROUP BY 1",
    "SELECT variant_id, count(*) FROM visits WHERE campaign_id = 'cmp_bench' GROUP BY 1",
    """SELECT variant_id, currency, count(*), sum(amount) FROM conversions
       WHERE campaign_id = 'cmp_bench' GROUP BY 1, 2""",
]
DIRECT_CONVERSIONS_SQL = """
SELECT step, currency, count(*), sum(amount) FROM conversions
WHERE account_id = :acc AND campaign_id IS NOT NULL AND converted_at >= :start
  AND converted_at < :end GROUP BY step, currency;
"""


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   max {ordered[-1]:7.1f} ms"
    )


async def timed(n: int, call) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        began = time.perf_counter()
        await call()
        out.append((time.perf_counter() - began) * 1000)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--enrollments", type=int, help="default: as many as --messages")
    parser.add_argument("--visits", type=int, help="default: as many as --conversions")
    args = parser.parse_args()
    args.enrollments = max(args.enrollments or args.messages, (args.messages + 2) // 3)
    args.visits = min(args.visits or args.conversions, (args.messages + 2) // 3)
    # The envelope key of the secrets at rest, for this process and the app it builds.
    os.environ.setdefault("LEADFLOW_SECRET_KEY", generate_key())
    use_keyring(Keyring.from_text(os.environ["LEADFLOW_SECRET_KEY"]))

    name = f"leadflow_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    db = Database(url)
    try:
        await upgrade(db.engine)
        clock = ManualClock()
        async with db.session() as session:
            created = await create_account(session, "Bench", clock.now())
        acc = created.account.id
        params = {
            "acc": acc,
            "start": START,
            "days": DAYS,
            "messages": args.messages,
            "conversions": args.conversions,
            "leads": args.enrollments,
            "visits": args.visits,
        }
        began = time.perf_counter()
        async with db.engine.begin() as conn:
            for sql in SEED_SQL:
                used = {k: v for k, v in params.items() if f":{k}" in sql}
                statement = text(sql.replace("timestamptz :start", "CAST(:start AS timestamptz)"))
                await conn.execute(statement, used)
        print(
            f"seeded {args.enrollments:,} enrollments, {args.messages:,} messages, "
            f"{args.visits:,} visits, {args.conversions:,} conversions "
            f"in {time.perf_counter() - began:.1f} s"
        )

        settings = Settings(database_url=url)
        app = create_app(settings, clock=clock, db=db, auto_migrate=False)
        headers = {"Authorization": f"Bearer {created.api_key}"}
        window = "from=2026-01-01T00:00:00Z&to=2026-04-01T00:00:00Z"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def overall() -> None:
                r = await client.get(f"/v1/stats?{window}&granularity=day", headers=headers)
                assert r.status_code == 200, r.text
                assert r.json()["overall"]["followups_sent"] == args.messages

            async def per_campaign() -> None:
                r = await client.get(f"/v1/campaigns/cmp_bench/stats?{window}", headers=headers)
                assert r.status_code == 200, r.text
                assert r.json()["overall"]["converted_leads"] == args.conversions

            async def ab_test() -> None:
                r = await client.get("/v1/campaigns/cmp_bench/ab-test", headers=headers)
                assert r.status_code == 200, r.text
                variants = r.json()["variants"]
                assert sum(v["leads_assigned"] for v in variants) == args.enrollments
                assert sum(v["unique_visitors"] for v in variants) == args.visits
                assert sum(v["conversions"] for v in variants) == args.conversions

            await overall()  # warm-up
            print(
                f"GET /v1/stats (90 days, daily)           {summary(await timed(args.requests, overall))}"
            )
            print(
                f"GET /v1/campaigns/{{id}}/stats             {summary(await timed(args.requests, per_campaign))}"
            )
            await ab_test()  # warm-up
            print(
                f"GET /v1/campaigns/{{id}}/ab-test           {summary(await timed(args.requests, ab_test))}"
            )

        async def direct() -> None:
            async with db.engine.connect() as conn:
                bounds = {"acc": acc, "start": START, "end": START + dt.timedelta(days=DAYS)}
                await conn.execute(text(DIRECT_SQL), bounds)
                await conn.execute(text(DIRECT_CONVERSIONS_SQL), bounds)

        print(
            f"same totals scanned from raw tables      {summary(await timed(max(5, args.requests // 5), direct))}"
        )

        async def direct_ab() -> None:
            async with db.engine.connect() as conn:
                for sql in DIRECT_AB_SQL:
                    await conn.execute(text(sql))

        print(
            f"A/B figures scanned from raw tables      {summary(await timed(max(5, args.requests // 5), direct_ab))}"
        )
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
