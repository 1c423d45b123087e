"""A campaign backfill of 1,000,000 open leads through the API, on `leadflow serve`.

    python bench/backfill.py [--leads 1000000] [--json backfill.json]

On a throwaway PostgreSQL database (LEADFLOW_BENCH_PG_DSN) it seeds ``--leads`` open
abandoned-checkout leads in no campaign (set-based, generate_series) and an active campaign
with two variants, then starts ``leadflow serve`` (API and worker in one process, the
deployment where a backfill competes hardest with requests), queues the backfill with
``POST /v1/campaigns/{id}/backfill`` and polls its progress while timing ``GET /healthz``
one request after another. Prints the backfill's duration and leads/s, the server's peak
RSS (VmHWM) beside its RSS before the backfill, and /healthz p50/p95 idle and during the
backfill; checks that every lead got exactly one enrollment and that the A/B counters agree.
The dispatcher's interval is set to an hour so no follow-up competes with the backfill.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import asyncpg
import httpx
from common import create_database, drop_database, dsn, free_port, sqlalchemy_url

from leadflow.accounts.service import create_account
from leadflow.campaigns.schemas import CampaignIn
from leadflow.campaigns.service import create_campaign
from leadflow.kit.clock import SystemClock
from leadflow.kit.db import Database
from leadflow.kit.migrate import upgrade
from leadflow.kit.secrets import Keyring, generate_key, use_keyring

# The envelope key of the secrets at rest, shared with the server process.
SECRET_KEY = os.environ.get("LEADFLOW_SECRET_KEY") or generate_key()

SEED_SQL = """
INSERT INTO leads (id, account_id, source_type, reference, status, email, first_name, language,
    products, amount, currency, recovery_url, attributes, captured_at, last_event_at, created_at,
    updated_at)
SELECT 'lead_' || lpad(i::text, 8, '0'), $1, 'abandoned_checkout', 'ref_' || i, 'open',
       'shopper' || i || '@example.com', 'Sam', 'en',
       '[{"id": "sku-1", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}]',
       49.00, 'EUR', 'https://shop.example.com/recover/' || i, '{}',
       now() - interval '30 days' + (i % 43200) * interval '1 minute',
       now() - interval '30 days', now(), now()
FROM generate_series(1, $2) AS i
"""


async def setup(name: str, leads: int) -> tuple[str, str]:
    """Migrate, create the account (returns its API key) and the campaign, seed the leads."""
    db = Database(sqlalchemy_url(name))
    try:
        await upgrade(db.engine)
        async with db.session() as session:
            created = await create_account(session, "Bench shop", SystemClock().now())
            steps = [{"delay": "PT1H", "template": "abandoned_checkout/1"}]
            body = CampaignIn.model_validate(
                {
                    "name": "Bench recovery",
                    "source": "abandoned_checkout",
                    "status": "active",
                    "variants": [{"name": "A", "steps": steps}, {"name": "B", "steps": steps}],
                }
            )
            campaign = await create_campaign(session, created.account, body, SystemClock().now())
    finally:
        await db.dispose()
    conn = await asyncpg.connect(dsn(name))
    try:
        began = time.perf_counter()
        await conn.execute(SEED_SQL, created.account.id, leads)
        await conn.execute("ANALYZE")
        print(f"seeded {leads:,} open leads in {time.perf_counter() - began:.1f} s")
    finally:
        await conn.close()
    return created.api_key, campaign.id


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[max(0, int(len(ordered) * 0.95) - 1)],
        "max_ms": ordered[-1],
        "requests": len(ordered),
    }


async def probe(
    client: httpx.AsyncClient, seconds: float | None, done: asyncio.Event
) -> list[float]:
    """``GET /healthz`` one after another (10 ms apart) for ``seconds`` or until ``done``."""
    samples = []
    until = time.perf_counter() + seconds if seconds is not None else None
    while not done.is_set() and (until is None or time.perf_counter() < until):
        began = time.perf_counter()
        response = await client.get("/healthz")
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.01)
    return samples


async def measure(base_url: str, pid: int, api_key: str, campaign_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        idle = await probe(client, 3.0, asyncio.Event())
        rss_before = rss_kib(pid, "VmRSS")
        began = time.perf_counter()
        response = await client.post(
            f"/v1/campaigns/{campaign_id}/backfill", json={}, headers=headers
        )
        assert response.status_code == 202, response.text
        post_ms = (time.perf_counter() - began) * 1000
        location = response.headers["location"]
        done = asyncio.Event()
        probing = asyncio.create_task(probe(client, None, done))
        job: dict[str, Any] = response.json()
        last_print = 0.0
        while job["status"] in ("queued", "running"):
            await asyncio.sleep(0.5)
            job = (await client.get(location, headers=headers)).json()
            if time.perf_counter() - last_print > 10:
                last_print = time.perf_counter()
                print(
                    f"  {time.perf_counter() - began:6.1f} s  {job['status']:9} "
                    f"scanned {job['scanned']:>9,}  enrolled {job['enrolled']:>9,}"
                )
        took = time.perf_counter() - began
        done.set()
        during = await probing
        assert job["status"] == "completed", job
        ab = (await client.get(f"/v1/campaigns/{campaign_id}/ab-test", headers=headers)).json()
    return {
        "job": job,
        "seconds": took,
        "post_ms": post_ms,
        "rss_before_mib": rss_before / 1024,
        "peak_rss_mib": rss_kib(pid, "VmHWM") / 1024,
        "healthz_idle": percentiles(idle),
        "healthz_during": percentiles(during),
        "ab_assigned": {v["name"]: v["leads_assigned"] for v in ab["variants"]},
    }


async def check(name: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn(name))
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM enrollments) AS enrollments,
                      (SELECT count(*) - count(DISTINCT lead_id) FROM enrollments) AS duplicates,
                      (SELECT count(*) FROM leads l WHERE NOT EXISTS
                          (SELECT 1 FROM enrollments e WHERE e.lead_id = l.id)) AS missed,
                      (SELECT coalesce(sum(leads_assigned), 0) FROM ab_test_counters) AS counted"""
        )
        return {k: int(v) for k, v in dict(row).items()}
    finally:
        await conn.close()


def serve(name: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": sqlalchemy_url(name),
        "LEADFLOW_SECRET_KEY": SECRET_KEY,
        "LEADFLOW_DISPATCH_INTERVAL_SECONDS": "3600",
        "LEADFLOW_BASE_URL": f"http://127.0.0.1:{port}",
    }
    cmd = [sys.executable, "-m", "leadflow", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)


async def wait_ready(base_url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("leadflow serve exited")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("leadflow serve did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    use_keyring(Keyring.from_text(SECRET_KEY))

    name = asyncio.run(create_database())
    proc: subprocess.Popen[bytes] | None = None
    try:
        api_key, campaign_id = asyncio.run(setup(name, args.leads))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        proc = serve(name, port)
        asyncio.run(wait_ready(base_url, proc))
        result = asyncio.run(measure(base_url, proc.pid, api_key, campaign_id))
        result["check"] = asyncio.run(check(name))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        asyncio.run(drop_database(name))

    job, counts = result["job"], result["check"]
    result["leads"] = args.leads
    result["leads_per_second"] = job["enrolled"] / result["seconds"]
    idle, during = result["healthz_idle"], result["healthz_during"]
    print(
        f"backfill of {args.leads:,} leads: {result['seconds']:.1f} s "
        f"({result['leads_per_second']:,.0f} leads/s), POST answered in {result['post_ms']:.0f} ms"
    )
    started = dt.datetime.fromisoformat(job["started_at"])
    result["worker_seconds"] = (
        dt.datetime.fromisoformat(job["finished_at"]) - started
    ).total_seconds()
    queued = (started - dt.datetime.fromisoformat(job["created_at"])).total_seconds()
    print(
        f"  {result['worker_seconds']:.1f} s from the worker's start to the end "
        f"(queued {queued:.1f} s before a worker tick took it)"
    )
    print(
        f"  scanned {job['scanned']:,}  enrolled {job['enrolled']:,}  A/B {result['ab_assigned']}"
    )
    print(
        f"  server RSS before {result['rss_before_mib']:.0f} MiB, "
        f"peak {result['peak_rss_mib']:.0f} MiB"
    )
    print(
        f"  GET /healthz idle:   p50 {idle['p50_ms']:.1f} ms  p95 {idle['p95_ms']:.1f} ms "
        f"({idle['requests']} requests)"
    )
    print(
        f"  GET /healthz during: p50 {during['p50_ms']:.1f} ms  p95 {during['p95_ms']:.1f} ms  "
        f"max {during['max_ms']:.1f} ms ({during['requests']} requests)"
    )
    print(
        f"  enrollments {counts['enrollments']:,}  duplicates {counts['duplicates']}  "
        f"missed {counts['missed']}  A/B counters {counts['counted']:,}"
    )
    ok = (
        counts["enrollments"] == args.leads
        and counts["duplicates"] == 0
        and counts["missed"] == 0
        and counts["counted"] == args.leads
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
