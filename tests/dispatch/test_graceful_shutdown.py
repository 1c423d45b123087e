"""SIGTERM to a worker (a routine deploy): the sends in flight finish, the rest of its claims
are given back at once, nothing is left half-sent, and another worker sends the rest once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from sqlalchemy import select

from leadflow.models.enrollments import Enrollment, Message
from tests.dispatch.helpers import THREE_STEPS, event_now, messages
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

LEADS = 10


async def _rows(db, model):
    async with db.session() as session:
        return list((await session.execute(select(model))).scalars())


async def test_sigterm_finishes_sends_in_flight_and_gives_back_the_rest(
    client, account, clock, smtp_sink, dispatcher, db
):
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    for i in range(LEADS):
        event = event_now(clock, email=f"shopper{i}@example.com", reference=f"chk_{i}")
        await ingest(client, account, clock, event)
    smtp_sink.handler.delay = 0.4  # a slow server: sends are in flight when the signal comes
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": db.url,
        "LEADFLOW_SMTP_URL": smtp_sink.url,
        "LEADFLOW_SMTP_POOL_SIZE": "2",
        "LEADFLOW_DISPATCH_INTERVAL_SECONDS": "0.2",
        "LEADFLOW_DISPATCH_BATCH_SIZE": str(LEADS),
        "LEADFLOW_SHUTDOWN_GRACE_SECONDS": "20",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "leadflow", "worker", env=env
    )
    try:
        deadline = time.monotonic() + 30
        # The sink runs in its own thread: poll what it received.
        while not smtp_sink.messages and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert smtp_sink.messages, "the worker sent nothing"
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()

    sent = smtp_sink.messages
    rows = await messages(db)
    assert [m.status for m in rows] == ["sent"] * len(rows)  # nothing left "sending"
    assert len(rows) == len(sent) < LEADS  # the signal came mid-batch
    held = [e.id for e in await _rows(db, Enrollment) if e.lease_token is not None]
    assert held == []  # every claim it did not process was given back

    smtp_sink.handler.delay = 0.0
    clock.advance(hours=2)  # the in-process dispatcher's clock: the first steps are due
    await dispatcher.run_until_idle()
    recipients = sorted(str(m["To"]) for m in smtp_sink.messages)
    assert recipients == sorted(f"shopper{i}@example.com" for i in range(LEADS))
    assert len(await _rows(db, Message)) == LEADS
