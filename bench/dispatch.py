"""Follow-up dispatch throughput against raw aiosmtplib to the same SMTP sink, in the same run.

    python bench/dispatch.py [--enrollments 10000] [--workers 1 2] [--sqlite] [--smtp HOST:PORT]

On a throwaway PostgreSQL database (LEADFLOW_BENCH_PG_DSN) it seeds ``--enrollments`` due
first steps (distinct addresses, predefined template), then, for each worker count, lets that
many worker processes (each a ``Dispatcher`` with the default pool of 4 SMTP connections)
send them all to the sink, and re-seeds between runs. The floor sends messages of the same
size with raw aiosmtplib over the same number of connections to the same sink. The sink is
Postfix's ``smtp-sink`` (started here when the command exists and no ``--smtp`` is given).
Prints msg/s, the ratio to the floor and the duplicate count (must be 0).

Each worker is timed from a go signal sent once it has started (imports, database
connection), so that, like the floor, only sending is measured; the CPU milliseconds a
message of the workers and of the floor are printed too (a figure less at the mercy of
other load on the machine). The floor is measured twice, before and after the workers, and
the ratio taken to the faster measurement. Besides the floor of earlier runs (an
``EmailMessage`` built and sent with ``send_message`` per message) it measures a stricter
one: the same messages serialised beforehand and sent with ``sendmail`` (SMTP alone).
``--sqlite`` adds one worker on a SQLite file database.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import aiosmtplib
import asyncpg
from common import create_database, drop_database, dsn, free_port, sqlalchemy_url
from sqlalchemy import text

from leadflow.config import Settings
from leadflow.kit.clock import SystemClock
from leadflow.kit.db import Database
from leadflow.kit.mail import build_transport
from leadflow.lifecycle.dispatcher import Dispatcher

POOL = 4
BATCH = 200

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
    """INSERT INTO enrollments (id, account_id, lead_id, campaign_id, variant_id, source_type,
           state, next_step, next_due_at, attempts, created_at, updated_at)
       SELECT 'enr_' || i, $1, 'lead_' || i, $3, $4, 'abandoned_checkout', 'active', 1,
              now() - interval '1 day', 0, now(), now()
       FROM generate_series(1, $2) AS i""",
    "ANALYZE",
]


def use_secret_key() -> None:
    """The envelope key of the secrets at rest, shared by this process and its workers
    (``LEADFLOW_SECRET_KEY``, made up for the run unless given)."""
    try:
        from leadflow.kit.secrets import Keyring, generate_key, use_keyring
    except ImportError:  # a tree without secrets at rest
        return
    key = os.environ.setdefault("LEADFLOW_SECRET_KEY", generate_key())
    use_keyring(Keyring.from_text(key))


async def setup(url: str) -> tuple[str, str, str]:
    """An account with one active campaign (one predefined step); returns its ids."""
    from leadflow.accounts.service import create_account
    from leadflow.campaigns.schemas import CampaignIn
    from leadflow.campaigns.service import create_campaign, live_variants
    from leadflow.kit.migrate import upgrade

    db = Database(url)
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


async def seed(url: str, ids: tuple[str, str, str], count: int) -> None:
    if url.startswith("sqlite"):
        await seed_sqlite(url, ids, count)
        return
    account_id, campaign_id, variant_id = ids
    conn = await asyncpg.connect(dsn(url.rsplit("/", 1)[-1]))
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


async def seed_sqlite(url: str, ids: tuple[str, str, str], count: int) -> None:
    """The same rows as ``SEED_SQL``, through SQLAlchemy (SQLite has no generate_series)."""
    from sqlalchemy import delete, insert

    from leadflow.models.enrollments import Enrollment, Message
    from leadflow.models.leads import Lead
    from leadflow.models.notifications import IlnDelivery
    from leadflow.models.stats import StatsCounter

    account_id, campaign_id, variant_id = ids
    now = SystemClock().now()
    captured = now - dt.timedelta(days=2)
    db = Database(url)
    try:
        async with db.session() as session:
            for model in (Message, IlnDelivery, StatsCounter, Enrollment, Lead):
                await session.execute(delete(model))
            product = {"id": "sku-1", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}
            leads = [
                {
                    "id": f"lead_{i}",
                    "account_id": account_id,
                    "source_type": "abandoned_checkout",
                    "reference": f"ref_{i}",
                    "status": "open",
                    "email": f"shopper{i}@example.com",
                    "first_name": "Sam",
                    "language": "en",
                    "products": [product],
                    "amount": Decimal("49.00"),
                    "currency": "EUR",
                    "recovery_url": f"https://shop.example.com/recover/{i}",
                    "attributes": {},
                    "captured_at": captured,
                    "last_event_at": captured,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, count + 1)
            ]
            await session.execute(insert(Lead.__table__), leads)
            enrollments = [
                {
                    "id": f"enr_{i}",
                    "account_id": account_id,
                    "lead_id": f"lead_{i}",
                    "campaign_id": campaign_id,
                    "variant_id": variant_id,
                    "source_type": "abandoned_checkout",
                    "state": "active",
                    "next_step": 1,
                    "next_due_at": now - dt.timedelta(days=1),
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(1, count + 1)
            ]
            await session.execute(insert(Enrollment.__table__), enrollments)
    finally:
        await db.dispose()


async def outcome(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.session() as session:
            row = (
                await session.execute(
                    text(
                        """SELECT count(CASE WHEN status = 'sent' THEN 1 END) AS sent,
                              count(*) - count(DISTINCT enrollment_id || ':' || step)
                                  AS duplicates,
                              count(*) - count(DISTINCT to_email) AS repeated_recipients
                           FROM messages"""
                    )
                )
            ).one()
        return dict(row._mapping)
    finally:
        await db.dispose()


async def run_worker(database_url: str, smtp_url: str, *, wait_for_go: bool = False) -> None:
    """One worker process: dispatch until nothing is due. With ``wait_for_go`` it says
    "ready" once started (imports, database connection) and waits for a line on stdin, so
    that the measured time is dispatching alone, as the floor's is sending alone."""
    settings = Settings(
        database_url=database_url,
        smtp_url=smtp_url,
        smtp_pool_size=POOL,
        dispatch_batch_size=BATCH,
        base_url="https://leadflow.example.com",
    )
    db = Database(database_url, pool_size=POOL + 2)
    transport = build_transport(settings)
    try:
        dispatcher = Dispatcher(settings, db, SystemClock(), transport)
        if wait_for_go:
            async with db.engine.connect():
                pass
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        cpu = time.process_time()
        await dispatcher.run_until_idle(max_rounds=100_000)
        if wait_for_go:
            print(f"cpu {time.process_time() - cpu}", flush=True)
    finally:
        await transport.close()
        await db.dispose()


def dispatch(url: str, smtp: str, workers: int) -> tuple[float, float]:
    """Seconds from the go signal until the last of ``workers`` processes is done, and the
    CPU seconds the processes spent dispatching."""
    cmd = [sys.executable, __file__, "--run-worker", url, f"smtp://{smtp}?starttls=false"]
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker failed to start")
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    cpu = 0.0
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError("a worker failed")
    seconds = time.perf_counter() - start
    for proc in procs:
        assert proc.stdout is not None
        cpu += float(proc.stdout.read().split()[-1])
    return seconds, cpu


def sample_email(i: int, size: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bench shop <shop@example.com>"
    message["To"] = f"shopper{i}@example.com"
    message["Subject"] = "You left something in your cart"
    message.set_content("x" * size)
    return message


async def floor(smtp: str, count: int, size: int, *, prebuilt: bool = False) -> tuple[float, float]:
    """Raw aiosmtplib: the same number of messages over POOL reused connections, each built
    as an ``EmailMessage`` and sent with ``send_message`` (the floor of earlier runs), or,
    ``prebuilt``, serialised beforehand and sent with ``sendmail`` (SMTP alone). Returns
    the seconds and the CPU seconds of the sending."""
    host, port = smtp.rsplit(":", 1)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    wire = [sample_email(i, size).as_bytes() for i in range(count)] if prebuilt else []

    async def sender() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=int(port), start_tls=False)
        await client.connect()
        try:
            while not queue.empty():
                i = queue.get_nowait()
                if prebuilt:
                    await client.sendmail("shop@example.com", [f"shopper{i}@example.com"], wire[i])
                else:
                    await client.send_message(sample_email(i, size))
        finally:
            await client.quit()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(POOL)))
    return time.perf_counter() - start, time.process_time() - cpu


def figures(seconds: float, cpu: float, count: int) -> dict[str, float]:
    return {
        "seconds": seconds,
        "per_second": count / seconds,
        "cpu_ms_per_message": cpu / count * 1000,
    }


def main() -> int:
    use_secret_key()
    if len(sys.argv) == 4 and sys.argv[1] == "--run-worker":
        asyncio.run(run_worker(sys.argv[2], sys.argv[3], wait_for_go=True))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrollments", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--smtp", help="host:port of a running SMTP sink")
    parser.add_argument(
        "--sqlite", action="store_true", help="also one worker on SQLite (a file database)"
    )
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
    count = args.enrollments
    results: dict[str, Any] = {"enrollments": count, "smtp_connections": POOL, "batch": BATCH}
    size = 6000  # about the size of a rendered predefined follow-up (HTML + text)

    def floors(when: str) -> None:
        for key, prebuilt in (("floor", False), ("floor_prebuilt", True)):
            run = figures(*asyncio.run(floor(smtp, count, size, prebuilt=prebuilt)), count)
            results[f"{key}_{when}"] = run
            label = "prebuilt, sendmail" if prebuilt else "built per message, send_message"
            print(
                f"floor {when:6} raw aiosmtplib, {POOL} connections, {label:32} "
                f"{run['per_second']:7.0f} msg/s  cpu {run['cpu_ms_per_message']:.2f} ms/msg"
            )

    runs: list[tuple[str, str, int]] = [
        (f"workers_{workers}", sqlalchemy_url(name), workers) for workers in args.workers
    ]
    scratch = tempfile.TemporaryDirectory()
    if args.sqlite:  # the embedded database: one worker (one writer)
        runs.append(("sqlite_workers_1", f"sqlite+aiosqlite:///{scratch.name}/bench.db", 1))
    try:
        setups = {url: asyncio.run(setup(url)) for url in {url for _, url, _ in runs}}
        floors("before")
        for key, url, workers in runs:
            asyncio.run(seed(url, setups[url], count))
            run = figures(*dispatch(url, smtp, workers), count)
            counts = asyncio.run(outcome(url))
            run["per_second"] = counts["sent"] / run["seconds"]
            results[key] = {"workers": workers, **run, **counts}
        floors("after")
        # Against the faster of the two measurements of each floor: the conservative ratio.
        for floor_key in ("floor", "floor_prebuilt"):
            results[f"{floor_key}_per_second"] = max(
                results[f"{floor_key}_before"]["per_second"],
                results[f"{floor_key}_after"]["per_second"],
            )
        for key, url, workers in runs:
            run = results[key]
            run["ratio"] = run["per_second"] / results["floor_per_second"]
            run["ratio_prebuilt"] = run["per_second"] / results["floor_prebuilt_per_second"]
            where = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
            print(
                f"leadflow, {where}, {workers} worker(s), {POOL} connections each: "
                f"{run['per_second']:7.0f} msg/s  cpu {run['cpu_ms_per_message']:.2f} ms/msg  "
                f"ratio {run['ratio']:.2f} (prebuilt floor: {run['ratio_prebuilt']:.2f})  "
                f"sent {run['sent']}  duplicates {run['duplicates']}"
            )
    finally:
        asyncio.run(drop_database(name))
        scratch.cleanup()
        if sink is not None:
            sink.terminate()
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
