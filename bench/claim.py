"""How the claim of due follow-ups scales with the enrollments table.

    python bench/claim.py [--sizes 10000 1000000] [--batch 100] [--repeat 20]

On a throwaway PostgreSQL database (LEADFLOW_BENCH_PG_DSN) it grows the enrollments table to
each of ``--sizes`` with set-based SQL (``generate_series``), always in the same proportions,
most of them not claimable, the way a table looks after months:

* 1 % due in a running campaign (the work the claim is for);
* 30 % active but not due yet; 30 % finished (completed or stopped);
* 39 % due long ago but paused, a third each by the account's switch, an inactive campaign,
  and a switched-off lead group (in a running campaign of source "all"). Paused work keeps
  its due time, so it is the oldest due work: an index on due time alone walks it first.

At each size it times the dispatcher's claim of one batch (``lifecycle.rules.claimable`` and
the leasing update, rolled back so that every repetition claims the same rows), prints the
median and p95 and the ``EXPLAIN (ANALYZE, BUFFERS)`` plan, and does the same for the claim
leadflow had before (one join of enrollments, accounts, campaigns, leads and lead groups with
OR conditions, still the SQLite path) for comparison. Writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import asyncpg
from common import create_database, drop_database, dsn, sqlalchemy_url
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import SystemClock
from leadflow.kit.db import Database
from leadflow.kit.leases import claim_due, lease, lease_free
from leadflow.lifecycle.rules import claimable, claimable_by_join
from leadflow.models.enrollments import Enrollment
from leadflow.vocabulary import EnrollmentState

# The category of enrollment i is i % 100 (see the module docstring).
SEED_SQL = """
WITH rows AS (
    SELECT i, i % 100 AS c FROM generate_series($1::bigint, $2::bigint) AS i
), placed AS (
    SELECT i, c,
           CASE WHEN c BETWEEN 61 AND 73 THEN $4 ELSE $3 END AS account_id,
           CASE WHEN c BETWEEN 61 AND 73 THEN $6
                WHEN c BETWEEN 74 AND 86 THEN $7
                WHEN c BETWEEN 87 AND 99 THEN $8
                ELSE $5 END AS campaign_id,
           CASE WHEN c BETWEEN 87 AND 99 THEN 'trial' ELSE 'abandoned_checkout' END AS source,
           CASE WHEN c = 0 THEN now() - interval '1 hour' - (i % 3600) * interval '1 second'
                WHEN c BETWEEN 1 AND 30 THEN now() + (1 + i % 30) * interval '1 day'
                WHEN c BETWEEN 31 AND 60 THEN now() - (i % 90) * interval '1 day'
                ELSE now() - interval '10 days' - (i % 3600) * interval '1 second' END AS due,
           CASE WHEN c BETWEEN 31 AND 45 THEN 'completed'
                WHEN c BETWEEN 46 AND 60 THEN 'stopped'
                ELSE 'active' END AS state
    FROM rows
), leads AS (
    INSERT INTO leads (id, account_id, source_type, reference, status, email, products,
                       attributes, captured_at, last_event_at, created_at, updated_at)
    SELECT 'lead_' || i, account_id, source, 'ref_' || i, 'open', 'lead' || i || '@example.com',
           '[]', '{}', now(), now(), now(), now()
    FROM placed
    RETURNING id
)
INSERT INTO enrollments (id, account_id, lead_id, campaign_id, variant_id, source_type, state,
                         next_step, next_due_at, attempts, created_at, updated_at)
SELECT 'enr_' || p.i, p.account_id, 'lead_' || p.i, p.campaign_id, v.id, p.source, p.state, 1,
       p.due, 0, now(), now()
FROM placed p JOIN variants v ON v.campaign_id = p.campaign_id
"""


def use_secret_key() -> None:
    try:
        from leadflow.kit.secrets import Keyring, generate_key, use_keyring
    except ImportError:  # a tree without secrets at rest
        return
    key = os.environ.setdefault("LEADFLOW_SECRET_KEY", generate_key())
    use_keyring(Keyring.from_text(key))


async def setup(db: Database) -> list[str]:
    """Two accounts (the second switched off), four campaigns; returns the ids used by the
    seed: account on, account off, running, running in the account off, inactive, "all"."""
    from leadflow.accounts.service import create_account
    from leadflow.campaigns.schemas import CampaignIn
    from leadflow.campaigns.service import create_campaign
    from leadflow.kit.migrate import upgrade

    await upgrade(db.engine)
    now = SystemClock().now()
    step = {"delay": "PT1H", "subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"}

    def body(name: str, source: str, status: str) -> CampaignIn:
        variants = [{"name": "A", "steps": [step]}]
        return CampaignIn.model_validate(
            {"name": name, "source": source, "status": status, "variants": variants}
        )

    async with db.session() as session:
        on = (await create_account(session, "Shop on", now)).account
        off = (await create_account(session, "Shop off", now)).account
        running = await create_campaign(
            session, on, body("Carts", "abandoned_checkout", "active"), now
        )
        elsewhere = await create_campaign(
            session, off, body("Carts", "abandoned_checkout", "active"), now
        )
        inactive = await create_campaign(
            session, on, body("Carts paused", "abandoned_checkout", "inactive"), now
        )
        everyone = await create_campaign(session, on, body("Everyone", "all", "active"), now)
        ids = [on.id, off.id, running.id, elsewhere.id, inactive.id, everyone.id]
    conn = await asyncpg.connect(dsn(db.url.rsplit("/", 1)[-1]))
    try:
        await conn.execute(
            "UPDATE accounts SET lead_management_enabled = false WHERE id = $1", off.id
        )
        await conn.execute(
            "UPDATE lead_groups SET active = false WHERE account_id = $1 AND key = 'trial'", on.id
        )
    finally:
        await conn.close()
    return ids


async def grow(name: str, ids: list[str], start: int, end: int) -> float:
    """Adds enrollments start..end (and their leads); returns the seconds it took."""
    conn = await asyncpg.connect(dsn(name))
    began = time.perf_counter()
    try:
        await conn.execute("SET synchronous_commit = off")
        step = 200_000
        for low in range(start, end + 1, step):
            await conn.execute(SEED_SQL, low, min(end, low + step - 1), *ids)
        await conn.execute("VACUUM ANALYZE enrollments")
        await conn.execute("VACUUM ANALYZE leads")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def claim_once(
    session: AsyncSession,
    candidates: Select[Any],
    locked: bool,
    now: dt.datetime,
    params: dict[str, Any],
) -> int:
    claimed = await claim_due(
        session,
        candidates,
        model=Enrollment,
        still_due=(
            Enrollment.state == EnrollmentState.ACTIVE,
            Enrollment.next_due_at <= now,
            lease_free(Enrollment, now),
        ),
        claim=lease(now, dt.timedelta(minutes=2), secrets.token_hex(16)),
        locked=locked,
        params=params,
    )
    return len(claimed)


async def explain(session: AsyncSession, candidates: Select[Any]) -> str:
    compiled = candidates.compile(dialect=session.get_bind().dialect)
    sql = str(compiled)
    params = [compiled.params[name] for name in compiled.positiontup or ()]
    raw = await session.connection()
    driver = (await raw.get_raw_connection()).driver_connection
    assert driver is not None
    rows = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
    return "\n".join(row[0] for row in rows)


async def measure(db: Database, batch: int, repeat: int, kind: str) -> dict[str, Any]:
    """Times ``repeat`` claims of one batch (each rolled back), and explains one."""
    timings: list[float] = []
    claimed = 0
    for _ in range(repeat):
        async with db.sessionmaker() as session:
            await session.connection()  # checked out: the claim alone is timed
            now = SystemClock().now()
            if kind == "claimable":
                candidates, locked = claimable(), True
                params: dict[str, Any] = {"now": now, "limit": batch}
            else:
                candidates, locked, params = claimable_by_join(now, batch), False, {}
            began = time.perf_counter()
            claimed = await claim_once(session, candidates, locked, now, params)
            timings.append((time.perf_counter() - began) * 1000)
            await session.rollback()
    async with db.sessionmaker() as session:
        now = SystemClock().now()
        if kind == "claimable":
            query = claimable().params(now=now, limit=batch)
        else:
            query = claimable_by_join(now, batch).with_for_update(of=Enrollment, skip_locked=True)
        plan = await explain(session, query)
        await session.rollback()
    timings.sort()
    return {
        "claimed": claimed,
        "median_ms": statistics.median(timings),
        "p95_ms": timings[min(len(timings) - 1, int(len(timings) * 0.95))],
        "plan": plan,
    }


async def run(name: str, sizes: list[int], batch: int, repeat: int) -> dict[str, Any]:
    db = Database(sqlalchemy_url(name), pool_size=2)
    results: dict[str, Any] = {"batch": batch, "repeat": repeat, "sizes": {}}
    try:
        ids = await setup(db)
        have = 0
        for size in sorted(sizes):
            seeded = await grow(name, ids, have + 1, size)
            have = size
            print(f"\n=== {size:,} enrollments (seeded in {seeded:.1f} s)")
            entry: dict[str, Any] = {"seed_seconds": seeded}
            for kind, label in (("claimable", "claim"), ("join", "claim before issue 10")):
                times = repeat if kind == "claimable" else max(1, min(repeat, 3))
                figures = await measure(db, batch, times, kind)
                entry[kind] = figures
                print(
                    f"{label:24} claimed {figures['claimed']:4}  median {figures['median_ms']:8.2f} ms"
                    f"  p95 {figures['p95_ms']:8.2f} ms  ({times} runs)"
                )
                print(figures["plan"])
            results["sizes"][str(size)] = entry
        small, large = str(min(sizes)), str(max(sizes))
        for kind in ("claimable", "join"):
            ratio = (
                results["sizes"][large][kind]["median_ms"]
                / results["sizes"][small][kind]["median_ms"]
            )
            results[f"{kind}_ratio"] = ratio
        print(
            f"\nclaim at {int(large):,} / at {int(small):,}: {results['claimable_ratio']:.2f}x "
            f"(before issue 10: {results['join_ratio']:.2f}x)"
        )
    finally:
        await db.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=100, help="the dispatch batch size")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", default=str(Path(__file__).with_name("claim.json")))
    args = parser.parse_args()
    if len(args.sizes) < 2:
        parser.error("--sizes needs two sizes or more")
    use_secret_key()
    name = asyncio.run(create_database())
    try:
        results = asyncio.run(run(name, args.sizes, args.batch, args.repeat))
    finally:
        asyncio.run(drop_database(name))
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
