"""Webhook ingest throughput against its floor, measured in the same run.

    python bench/ingest.py [--seconds 10] [--connections 32] [--batches 5] [--batch-size 1000]
                           [--json bench/ingest.json]

On a throwaway PostgreSQL database (LEADFLOW_BENCH_PG_DSN, default the tests' server) it starts
two servers as subprocesses, one uvicorn process each:

* the floor: ``bench/bare_app.py``, a bare FastAPI endpoint that inserts the body into one
  table with asyncpg;
* ``leadflow api`` with an account, an active campaign that takes every lead, and an ILN
  endpoint subscribed to ``lead.captured``, so every event is verified, deduplicated, turned
  into a lead, enrolled and announced (outbox row) in one transaction.

Single events are replayed by ``wrk`` (a separate process, 2 threads, ``--connections``
connections) from pre-signed, distinct Standard Webhooks requests; batches of
``--batch-size`` events are posted one after another by one client. Prints events/s, p50/p99
and the ratio to the floor, and writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import create_database, drop_database, dsn, free_port, sqlalchemy_url

from leadflow.kit.signing import sign

HERE = Path(__file__).resolve().parent

THREADS = 2

WRK_SCRIPT = r"""
-- Replays pre-signed requests: one file per thread, one request per line:
-- webhook-id \t webhook-timestamp \t webhook-signature \t body
local threads = {}
local index = 0
function setup(thread)
  thread:set("file", string.format("%s.%d", os.getenv("BENCH_REQUESTS"), index))
  index = index + 1
  table.insert(threads, thread)
end
function init(args)
  reqs = {}
  for line in io.lines(file) do
    local id, ts, sig, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
    local headers = {}
    headers["Content-Type"] = "application/json"
    headers["webhook-id"] = id
    headers["webhook-timestamp"] = ts
    headers["webhook-signature"] = sig
    table.insert(reqs, wrk.format("POST", os.getenv("BENCH_PATH"), headers, body))
  end
  n = 0
end
function request()
  n = n + 1
  if n > #reqs then n = 1 end
  return reqs[n]
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def event(i: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "type": "checkout.abandoned",
        "occurred_at": now.isoformat().replace("+00:00", "Z"),
        "reference": f"chk_{i}",
        "customer": {"email": f"shopper{i}@example.com", "first_name": "Sam", "language": "en"},
        "products": [{"id": "sku-1", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}],
        "amount": "49.00",
        "currency": "EUR",
        "recovery_url": f"https://shop.example.com/recover/chk_{i}",
    }


def write_requests(base: Path, secret: str, count: int, offset: int) -> None:
    """``count`` distinct signed events, split over one file per wrk thread."""
    now = dt.datetime.now(dt.UTC)
    ts = int(time.time())
    files = [open(f"{base}.{t}", "w") for t in range(THREADS)]  # noqa: SIM115
    try:
        for i in range(count):
            body = json.dumps(event(offset + i, now), separators=(",", ":"))
            msg_id = f"msg_{offset + i}_{uuid.uuid4().hex[:8]}"
            sig = sign(secret, msg_id, ts, body.encode())
            files[i % THREADS].write(f"{msg_id}\t{ts}\t{sig}\t{body}\n")
    finally:
        for f in files:
            f.close()


@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(log.read().decode())
                time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_wrk(
    url: str, path: str, requests: Path, seconds: int, connections: int
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = {**os.environ, "BENCH_REQUESTS": str(requests), "BENCH_PATH": path}
    out = subprocess.run(
        ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    match = re.search(
        r"RESULT requests=(\d+) duration_us=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+)", out
    )
    if match is None:
        raise RuntimeError(out)
    reqs, duration, errors, p50, p99 = (int(g) for g in match.groups())
    return {
        "requests": reqs,
        "errors": errors,
        "per_second": reqs / (duration / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
    }


def setup_account(env: dict[str, str], base_url: str) -> dict[str, str]:
    """An account with a campaign taking every lead and an ILN endpoint (never delivered to:
    no worker runs)."""
    out = subprocess.run(
        ["leadflow", "accounts", "create", "Bench shop", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    account: dict[str, str] = json.loads(out)
    headers = {"Authorization": f"Bearer {account['api_key']}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        campaign = {
            "name": "Bench recovery",
            "source": "abandoned_checkout",
            "status": "active",
            "variants": [
                {"name": "A", "steps": [{"delay": "PT1H", "template": "abandoned_checkout/1"}]}
            ],
        }
        response = client.post("/v1/campaigns", json=campaign)
        response.raise_for_status()
        endpoint = {"url": "http://127.0.0.1:9/iln", "event_types": ["lead.captured"]}
        client.post("/v1/iln/endpoints", json=endpoint).raise_for_status()
    return account


def batches(account: dict[str, str], base_url: str, count: int, size: int) -> dict[str, float]:
    """``count`` batches of ``size`` distinct events, posted one after another."""
    path = f"/v1/webhooks/{account['id']}/events/batch"
    took = []
    accepted = 0
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for b in range(count):
            now = dt.datetime.now(dt.UTC)
            items = [
                {"id": f"batch_{b}_{i}", **event(10_000_000 + b * size + i, now)}
                for i in range(size)
            ]
            body = json.dumps({"events": items}, separators=(",", ":")).encode()
            msg_id, ts = f"batch_{b}", int(time.time())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign(account["webhook_secret"], msg_id, ts, body),
            }
            start = time.perf_counter()
            response = client.post(path, content=body, headers=headers)
            took.append(time.perf_counter() - start)
            response.raise_for_status()
            accepted += response.json()["accepted"]
    return {
        "batches": count,
        "batch_size": size,
        "accepted": accepted,
        "events_per_second": accepted / sum(took),
        "p50_batch_ms": statistics.median(took) * 1000,
    }


async def count_rows(name: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn(name))
    try:
        return {
            table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
            for table in ("events", "leads", "enrollments", "iln_deliveries", "bare_events")
        }
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--events", type=int, default=60_000, help="pre-signed events per run")
    parser.add_argument("--json", default=str(HERE / "ingest.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2

    name = asyncio.run(create_database())
    work = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    try:
        env = {
            **os.environ,
            "LEADFLOW_DATABASE_URL": sqlalchemy_url(name),
            "LEADFLOW_ILN_ALLOW_PRIVATE": "true",
            "LEADFLOW_MAX_BATCH_EVENTS": str(max(1000, args.batch_size)),
            "LEADFLOW_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            # As the floor runs (--no-access-log): the same work per request but the app's.
            "LEADFLOW_ACCESS_LOG": "false",
            "BARE_DSN": dsn(name),
        }
        subprocess.run(["leadflow", "migrate"], env=env, check=True, capture_output=True)
        results: dict[str, Any] = {"connections": args.connections, "seconds": args.seconds}

        bare_port = free_port()
        bare = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bare_app:app"]
        bare += ["--port", str(bare_port), "--log-level", "warning", "--no-access-log"]
        with server(bare, env, bare_port):
            requests = work / "bare"
            write_requests(requests, "whsec_" + "A" * 32, args.events, 0)
            url = f"http://127.0.0.1:{bare_port}"
            results["floor"] = run_wrk(
                url, "/v1/webhooks/x/events", requests, args.seconds, args.connections
            )

        port = free_port()
        cmd = ["leadflow", "api", "--port", str(port)]
        with server(cmd, env, port):
            url = f"http://127.0.0.1:{port}"
            account = setup_account(env, url)
            requests = work / "leadflow"
            write_requests(requests, account["webhook_secret"], args.events, 0)
            path = f"/v1/webhooks/{account['id']}/events"
            results["single"] = run_wrk(url, path, requests, args.seconds, args.connections)
            if args.batches:
                results["batch"] = batches(account, url, args.batches, args.batch_size)
        results["rows"] = asyncio.run(count_rows(name))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        asyncio.run(drop_database(name))

    floor, single = results["floor"], results["single"]
    results["ratio"] = single["per_second"] / floor["per_second"]
    print(
        f"floor (bare FastAPI + asyncpg insert): {floor['per_second']:8.0f} req/s  "
        f"p50 {floor['p50_ms']:.1f} ms  p99 {floor['p99_ms']:.1f} ms  errors {floor['errors']}"
    )
    print(
        f"leadflow single event:                 {single['per_second']:8.0f} ev/s   "
        f"p50 {single['p50_ms']:.1f} ms  p99 {single['p99_ms']:.1f} ms  "
        f"errors {single['errors']}  ratio {results['ratio']:.2f}"
    )
    if "batch" in results:
        b = results["batch"]
        print(
            f"leadflow batch of {b['batch_size']}:                 "
            f"{b['events_per_second']:8.0f} ev/s   p50 {b['p50_batch_ms']:.0f} ms a batch"
        )
    print("rows:", results["rows"])
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
