"""Follow-up dispatch throughput against raw aiosmtplib to the same SMTP sink, in the same run.

    python bench/dispatch.py [--enrollments 10000] [--workers 1 2] [--smtp 127.0.0.1:2525]

On a throwaway PostgreSQL database (LEADFLOW_BENCH_PG_DSN) it seeds ``--enrollments`` due
first steps (distinct addresses, predefined template), then, for each worker count, lets that
many worker processes (each a ``Dispatcher`` with the default pool of 4 SMTP connections)
send them all to the sink, and re-seeds between runs. The floor sends messages of the same
size with raw aiosmtplib over the same number of connections to the same sink. The sink is
Postfix's ``smtp-sink`` (started here when the command exists and no ``--smtp`` is given).
Prints msg/s, the ratio to the floor and the duplicate count (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import aiosmtplib
import asyncpg
from common import create_database, drop_database, dsn, free_port, sqlalchemy_url

from leadflow.config import Settings
from leadflow.kit.clock import SystemClock
from leadflow.kit.db import Database
from leadflow.kit.mail import build_transport
from leadflow.lifecycle.dispatcher import Dispatcher

POOL = 4

SEED_SQL = [
    "DELETE FROM messages",
    "DELETE FROM iln_deliveries",
    "DELETE FROM stats_counters",
    "DELETE FROM enrollments",
    "DELETE FROM leads",
    """INSERT INTO leads (id, account_id, source_type, reference, status, email, first_name,
           language, products, amount, currency, recovery_url, attributes, captured_at,
           last_event_at, created_at, updated_at)
       SELECT 'lead_' || i, $1, 'abandoned_checkout', 'ref_' || i, 'open',
              'shopper' || i || '@example.com', 'Sam', 'en',
              '[{"id": "sku-1", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}]',
              49.00, 'EUR', 'https://shop.example.com/recover/' || i, '{}',
              now() - interval '2 days', now() - interval '2 days', now(), now()
       FROM generate_series(1, $2) AS i""",
    """INSERT INTO enrollments (id, account_id, lead_id, campaign_id, variant_id, state, next_step,
           next_due_at, attempts, created_at, updated_at)
       SELECT 'enr_' || i, $1, 'lead_' || i, $3, $4, 'active', 1,
              now() - interval '1 day', 0, now(), now()
       FROM generate_series(1, $2) AS i""",
    "ANALYZE",
]


async def setup(name: str) -> tuple[str, str, str]:
    """An account with one active campaign (one predefined step); returns its ids."""
    from leadflow.accounts.service import create_account
    from leadflow.campaigns.schemas import CampaignIn
    from leadflow.campaigns.service import create_campaign, live_variants
    from leadflow.kit.migrate import upgrade

    db = Database(sqlalchemy_url(name))
    try:
        await upgrade(db.engine)
        async with db.session() as session:
            account = (await create_account(session, "Bench shop", SystemClock().now())).account
            body = CampaignIn.model_validate(
                {
                    "name": "Bench recovery",
                    "source": "abandoned_checkout",
                    "status": "active",
                    "variants": [
                        {
                            "name": "A",
                            "steps": [{"delay": "PT1H", "template": "abandoned_checkout/1"}],
                        }
                    ],
                }
            )
            campaign = await create_campaign(session, account, body, SystemClock().now())
            variant = (await live_variants(session, campaign.id))[0]
            return account.id, campaign.id, variant.id
    finally:
        await db.dispose()


async def seed(name: str, ids: tuple[str, str, str], count: int) -> None:
    account_id, campaign_id, variant_id = ids
    conn = await asyncpg.connect(dsn(name))
    try:
        for sql in SEED_SQL:
            args: list[Any] = []
            if "$1" in sql:
                args = [account_id, count]
            if "$3" in sql:
                args += [campaign_id, variant_id]
            await conn.execute(sql, *args)
    finally:
        await conn.close()


async def outcome(name: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn(name))
    try:
        row = await conn.fetchrow(
            """SELECT count(*) FILTER (WHERE status = 'sent') AS sent,
                      count(*) - count(DISTINCT (enrollment_id, step)) AS duplicates,
                      count(*) - count(DISTINCT to_email) AS repeated_recipients
               FROM messages"""
        )
        return dict(row)
    finally:
        await conn.close()


async def run_worker(database_url: str, smtp_url: str) -> None:
    """One worker process: dispatch until nothing is due."""
    settings = Settings(
        database_url=database_url,
        smtp_url=smtp_url,
        smtp_pool_size=POOL,
        dispatch_batch_size=200,
        base_url="https://leadflow.example.com",
    )
    db = Database(database_url, pool_size=POOL + 2)
    transport = build_transport(settings)
    try:
        dispatcher = Dispatcher(settings, db, SystemClock(), transport)
        await dispatcher.run_until_idle(max_rounds=100_000)
    finally:
        await transport.close()
        await db.dispose()


def dispatch(name: str, smtp: str, workers: int) -> float:
    url = sqlalchemy_url(name)
    cmd = [sys.executable, __file__, "--run-worker", url, f"smtp://{smtp}?starttls=false"]
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd) for _ in range(workers)]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError("a worker failed")
    return time.perf_counter() - start


def sample_email(i: int, size: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bench shop <shop@example.com>"
    message["To"] = f"shopper{i}@example.com"
    message["Subject"] = "You left something in your cart"
    message.set_content("x" * size)
    return message


async def floor(smtp: str, count: int, size: int) -> float:
    """Raw aiosmtplib: the same number of messages over POOL reused connections."""
    host, port = smtp.rsplit(":", 1)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def sender() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=int(port), start_tls=False)
        await client.connect()
        try:
            while not queue.empty():
                i = queue.get_nowait()
                await client.send_message(sample_email(i, size))
        finally:
            await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(POOL)))
    return time.perf_counter() - start


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--run-worker":
        asyncio.run(run_worker(sys.argv[2], sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrollments", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--smtp", help="host:port of a running SMTP sink")
    parser.add_argument("--json", default=str(Path(__file__).with_name("dispatch.json")))
    args = parser.parse_args()

    sink = None
    smtp = args.smtp
    if smtp is None:
        if shutil.which("smtp-sink") is None:
            print("smtp-sink is needed (apt-get install postfix), or --smtp", file=sys.stderr)
            return 2
        smtp = f"127.0.0.1:{free_port()}"
        sink = subprocess.Popen(["smtp-sink", "-u", "postfix", smtp, "1000"])
        time.sleep(0.5)
    name = asyncio.run(create_database())
    results: dict[str, Any] = {"enrollments": args.enrollments, "smtp_connections": POOL}
    try:
        ids = asyncio.run(setup(name))
        size = 6000  # about the size of a rendered predefined follow-up (HTML + text)
        took = asyncio.run(floor(smtp, args.enrollments, size))
        results["floor_per_second"] = args.enrollments / took
        print(
            f"floor (raw aiosmtplib, {POOL} connections): {results['floor_per_second']:7.0f} msg/s"
        )
        for workers in args.workers:
            asyncio.run(seed(name, ids, args.enrollments))
            took = dispatch(name, smtp, workers)
            counts = asyncio.run(outcome(name))
            rate = counts["sent"] / took
            results[f"workers_{workers}"] = {"per_second": rate, "seconds": took, **counts}
            print(
                f"leadflow, {workers} worker(s):              {rate:7.0f} msg/s  "
                f"ratio {rate / results['floor_per_second']:.2f}  sent {counts['sent']}  "
                f"duplicates {counts['duplicates']}"
            )
    finally:
        asyncio.run(drop_database(name))
        if sink is not None:
            sink.terminate()
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
