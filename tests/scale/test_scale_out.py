"""Scale-out: two ``leadflow api`` processes and three ``leadflow worker`` processes on one
PostgreSQL database, driven end to end as a deployment behind a load balancer would be.

Campaign and stats go through API B, events (signed webhooks) through API A; the workers send
every follow-up to a real SMTP server. Every follow-up arrives exactly once and has exactly
one message row; the purchases convert their leads, and the stats API B reads match what was
sent and bought.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from leadflow.kit.db import Database
from leadflow.models.enrollments import Enrollment, Message
from tests.chaos.helpers import client_ports
from tests.fixtures.mail import SinkHandler, SmtpSink
from tests.support.api import ADMIN_TOKEN, auth, ok_json
from tests.support.campaigns import create_campaign, custom_step
from tests.support.events import iso, lead_event, post_batch, post_event
from tests.support.results import no_min_delays
from tests.support.served import Cluster, serve_cluster

APIS = 2
WORKERS = 3
LEADS = 60
STEPS = 3
BUYERS = 12  # the first BUYERS leads buy after their follow-ups
AMOUNT = Decimal("49.00")
SEND_BOUND = 40.0  # seconds for every follow-up to go out
FLOW_BOUND = 60.0  # seconds for the whole flow, the processes started
STEP_SUBJECT = re.compile(r"^Step (\d) for ")


class PeerHandler(SinkHandler):
    """Also notes the client port each message came from, to tell the workers apart."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.01)  # a real server takes a moment: no worker drains alone
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            self.peers.append(int(session.peer[1]))
        return reply


class Sink(SmtpSink):
    def __init__(self) -> None:
        super().__init__()
        self.handler = PeerHandler()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = Sink()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with serve_cluster(
        tmp_path_factory.mktemp("scale-out"),
        apis=APIS,
        workers=WORKERS,
        worker_settings={
            "smtp_url": sink.url,
            "smtp_pool_size": "2",
            "smtp_timeout_seconds": "10",
            "dispatch_interval_seconds": "0.2",
            "dispatch_batch_size": "5",
        },
    ) as started:
        yield started


def email_of(n: int) -> str:
    return f"scale{n:03d}@example.com"


async def until(
    condition: Callable[[], Awaitable[bool]], bound: float, what: Callable[[], str]
) -> None:
    deadline = time.monotonic() + bound
    while not await condition():
        assert time.monotonic() < deadline, f"after {bound} s: {what()}"
        await asyncio.sleep(0.2)


def received(sink: Sink) -> Counter[tuple[str, int]]:
    """(address, step) -> how many times it arrived."""
    counts: Counter[tuple[str, int]] = Counter()
    for message in sink.messages:
        match = STEP_SUBJECT.match(str(message["Subject"]))
        assert match, message["Subject"]
        counts[(str(message["To"]), int(match.group(1)))] += 1
    return counts


async def message_rows(db: Database) -> list[tuple[str, int, str]]:
    async with db.session() as session:
        rows = await session.execute(select(Message.to_email, Message.step, Message.status))
        return [(r.to_email, r.step, r.status) for r in rows]


async def active_enrollments(db: Database) -> int:
    async with db.session() as session:
        found = await session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.state == "active")
        )
        return int(found or 0)


def senders(sink: Sink, cluster: Cluster) -> Counter[int] | None:
    """Worker pid -> messages that came over its SMTP connections still open now (pooled
    connections stay open while the worker runs); None where /proc cannot tell."""
    owner: dict[int, int] = {}
    for proc in cluster.workers:
        ports = client_ports(proc.pid, sink.port)
        if ports is None:
            return None
        for port in ports:
            owner[port] = proc.pid
    with sink.handler.lock:
        peers = list(sink.handler.peers)
    return Counter(owner[port] for port in peers if port in owner)


async def test_two_apis_and_three_workers_send_every_follow_up_once(
    cluster: Cluster, sink: Sink
) -> None:
    api_a, api_b = cluster.apis
    db = Database(cluster.database_url, pool_size=2)
    began = time.monotonic()  # every process is ready: from here on it is the flow alone
    try:
        async with (
            httpx.AsyncClient(base_url=api_a.base_url, timeout=15) as a,
            httpx.AsyncClient(base_url=api_b.base_url, timeout=15) as b,
        ):
            # The merchant's side, through API B.
            created = await b.post(
                "/v1/admin/accounts",
                json={"name": "Scale Shop"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert created.status_code == 201, created.text
            account = created.json()
            await no_min_delays(b, account)
            steps = [
                custom_step(delay="PT0S", subject=f"Step {n} for {{{{ first_name }}}}")
                for n in range(1, STEPS + 1)
            ]
            campaign = await create_campaign(b, account, steps=steps, status="active")

            # The platform's side, through API A: signed batches of abandoned checkouts.
            now = iso(dt.datetime.now(dt.UTC))
            events = [
                {
                    "id": f"evt_{n:03d}",
                    **lead_event(reference=f"chk_{n:03d}", email=email_of(n), occurred_at=now),
                }
                for n in range(LEADS)
            ]
            for start in range(0, LEADS, 20):
                response = await post_batch(a, account, events[start : start + 20])
                assert response.status_code == 200, response.text
                assert response.json()["accepted"] == len(events[start : start + 20])

            # The workers send every step of every lead.
            expected = {(email_of(n), step) for n in range(LEADS) for step in range(1, 4)}

            async def all_received() -> bool:
                cluster.assert_running()
                return set(received(sink)) >= expected

            await until(
                all_received,
                SEND_BOUND,
                lambda: (
                    f"{len(received(sink))} of {len(expected)} follow-ups received\n"
                    f"{cluster.logs()}"
                ),
            )

            async def settled() -> bool:
                rows = await message_rows(db)
                return await active_enrollments(db) == 0 and all(
                    status == "sent" for _, _, status in rows
                )

            await until(settled, 10, lambda: f"messages still in flight\n{cluster.logs()}")
            work = senders(sink, cluster)
            await asyncio.sleep(1.0)  # several dispatch ticks of every worker: nothing more

            # Exactly once, on the wire and in the database.
            counts = received(sink)
            assert set(counts) == expected
            assert [key for key, n in counts.items() if n > 1] == []
            rows = await message_rows(db)
            assert len(rows) == LEADS * STEPS
            assert {(to, step) for to, step, _ in rows} == expected
            assert {status for _, _, status in rows} == {"sent"}
            # The work was shared: more than one worker sent follow-ups.
            if work is not None:  # Linux
                assert len(work) >= 2, (work, cluster.logs())

            # Purchases through API A convert their leads.
            bought = dt.datetime.now(dt.UTC)
            for n in range(BUYERS):
                order = lead_event(
                    type="order.completed",
                    reference=f"chk_{n:03d}",
                    email=email_of(n),
                    occurred_at=bought,
                    amount=str(AMOUNT),
                    currency="EUR",
                )
                result = ok_json(await post_event(a, account, {"id": f"ord_{n:03d}", **order}))
                assert len(result["converted_lead_ids"]) == 1, result

            # The stats API B reads match.
            stats = ok_json(
                await b.get(
                    f"/v1/campaigns/{campaign['id']}/stats",
                    params={"from": iso(bought - dt.timedelta(hours=1))},
                    headers=auth(account),
                )
            )
            overall = stats["overall"]
            assert overall["followups_sent"] == LEADS * STEPS
            assert overall["targeted_leads"] == LEADS
            assert overall["converted_leads"] == BUYERS
            assert overall["value"] == {"EUR": f"{AMOUNT * BUYERS:.2f}"}
            assert [(s["step"], s["followups_sent"]) for s in stats["steps"]] == [
                (step, LEADS) for step in range(1, STEPS + 1)
            ]
            converted = ok_json(
                await b.get(
                    "/v1/leads", params={"status": "converted", "limit": 100}, headers=auth(account)
                )
            )
            assert len(converted["items"]) == BUYERS
    finally:
        await db.dispose()
    took = time.monotonic() - began
    assert took < FLOW_BOUND, f"the flow took {took:.0f} s with every process ready"
