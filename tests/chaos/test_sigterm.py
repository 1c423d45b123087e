"""SIGTERM to two workers at once, mid-batch (a deploy of every worker): the sends in flight
finish, every claim they will not process is given back at once, and a third worker sends the
rest: each lead gets its follow-up exactly once. (One worker and the in-process dispatcher:
tests/dispatch/test_graceful_shutdown.py.)"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import select

from leadflow.models.enrollments import Message
from tests.chaos.helpers import (
    Workers,
    held_claims,
    postgres_only,
    statuses,
    wait_until,
    worker_env,
)
from tests.support.campaigns import create_campaign, custom_step
from tests.support.events import lead_event, post_batch
from tests.support.results import no_min_delays

LEADS = 60


async def test_sigterm_to_two_workers_mid_batch_loses_nothing_and_sends_nothing_twice(
    client, account, clock, smtp_sink, db, tmp_path
):
    postgres_only(db)
    await no_min_delays(client, account)
    await create_campaign(client, account, steps=[custom_step(delay="PT0S")], status="active")
    emails = [f"deploy{i:03d}@example.com" for i in range(LEADS)]
    events = [
        {"id": f"evt_{i}", **lead_event(reference=f"chk_{i}", email=email, occurred_at=clock.now())}
        for i, email in enumerate(emails)
    ]
    response = await post_batch(client, account, events, clock=clock)
    assert response.json()["accepted"] == LEADS, response.text

    smtp_sink.handler.delay = 0.5  # a slow server: sends are in flight when the signal comes
    env = worker_env(
        db.url,
        smtp_url=smtp_sink.url,
        smtp_pool_size=2,
        dispatch_interval_seconds=0.2,
        dispatch_batch_size=15,
        dispatch_lease_seconds=60,  # a claim kept past the signal would block the third worker
        shutdown_grace_seconds=20,
    )
    workers = Workers(env, tmp_path)
    try:
        await workers.start(2)
        await workers.wait_ready()
        # Both at work: each has sent something, and more is claimed than sent.
        deadline = time.monotonic() + 30
        while len(smtp_sink.messages) < 4 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert len(smtp_sink.messages) >= 4, workers.logs()
        assert await held_claims(db) > 0  # mid-batch: claims are held
        codes = await workers.terminate(limit=30)
        assert codes == [0, 0], workers.logs()

        sent_by_the_two = len(smtp_sink.messages)
        found = await statuses(db)
        assert set(found) <= {"sent"}, found  # every send in flight finished; none half-sent
        assert found["sent"] == sent_by_the_two  # what the server took is recorded as sent
        assert sent_by_the_two < LEADS  # the signal came mid-batch
        assert await held_claims(db) == 0  # every claim not processed was given back

        smtp_sink.handler.delay = 0.0
        await workers.start(1)
        took = await wait_until(lambda: _all_sent(db), limit=30, interval=0.2)
        assert took is not None, workers.logs()
        assert await workers.terminate(limit=30) == [0]
    finally:
        await workers.close()

    received = Counter(str(m["To"]) for m in smtp_sink.messages)
    assert received == Counter(emails)  # every lead once, none twice
    assert await held_claims(db) == 0


async def _all_sent(db) -> bool:
    async with db.session() as session:
        found = list((await session.execute(select(Message.status))).scalars())
    return len(found) == LEADS and set(found) == {"sent"}
