"""The SMTP server is down (connection refused) while follow-ups are due, then comes back: the
workers keep retrying without giving anything up, and once it is back every lead gets its
follow-up exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from leadflow.models.enrollments import Message
from tests.chaos.helpers import Workers, postgres_only, statuses, wait_until, worker_env
from tests.support.campaigns import create_campaign, custom_step
from tests.support.events import lead_event, post_batch
from tests.support.results import no_min_delays

LEADS = 40
OUTAGE_SECONDS = 6.0


async def test_an_smtp_outage_delays_follow_ups_and_loses_none(
    client, account, clock, smtp_sink, db, tmp_path
):
    postgres_only(db)
    await no_min_delays(client, account)
    await create_campaign(client, account, steps=[custom_step(delay="PT0S")], status="active")
    emails = [f"outage{i:03d}@example.com" for i in range(LEADS)]
    events = [
        {"id": f"evt_{i}", **lead_event(reference=f"chk_{i}", email=email, occurred_at=clock.now())}
        for i, email in enumerate(emails)
    ]
    response = await post_batch(client, account, events, clock=clock)
    assert response.json()["accepted"] == LEADS, response.text

    smtp_sink.stop()  # down: its port refuses connections
    workers = Workers(
        worker_env(
            db.url,
            smtp_url=smtp_sink.url,
            smtp_pool_size=2,
            dispatch_interval_seconds=0.2,
            dispatch_batch_size=20,
            smtp_retry_base_seconds=0.5,
            smtp_retry_max_seconds=2,
        ),
        tmp_path,
    )
    try:
        await workers.start(2)
        await workers.wait_ready()
        await asyncio.sleep(OUTAGE_SECONDS)
        during = await statuses(db)
        async with db.session() as session:
            most_attempts = await session.scalar(select(func.max(Message.attempts)))
        # Every follow-up was tried and refused: each waits for its retry (or is being
        # retried right now); none was given up, none counted as sent.
        assert sum(during.values()) == LEADS, during
        assert set(during) <= {"deferred", "sending"} and during["deferred"] > 0, during
        assert most_attempts is not None and most_attempts >= 2  # retried within the outage

        smtp_sink.start()  # back, on the same port
        took = await wait_until(lambda: _all_sent(db), limit=30, interval=0.2)
        assert took is not None, (await statuses(db), workers.logs())
        assert await workers.terminate(limit=30) == [0, 0]
    finally:
        await workers.close()

    assert Counter(str(m["To"]) for m in smtp_sink.messages) == Counter(emails)  # once each
    print(f"\nSMTP outage of {OUTAGE_SECONDS:.0f} s: all {LEADS} delivered {took:.1f} s after")


async def _all_sent(db) -> bool:
    found = await statuses(db)
    return found == Counter({"sent": LEADS})
