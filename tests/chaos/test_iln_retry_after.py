"""An ILN receiver being deployed answers ``503`` with ``Retry-After: 1`` for a few seconds,
then ``200``: a real worker process honours the wait in real time and delivers every
notification; none is dead-lettered, though the answers outnumber the retry schedule's steps.
(The same rule step by step on a manual clock: tests/notifications/test_retry_after.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from leadflow.config import Settings
from tests.chaos.helpers import Workers, postgres_only, wait_until, worker_env
from tests.notifications.helpers import add_endpoint, deliveries
from tests.notifications.receiver import Receiver, Reply
from tests.support.events import lead_event, post_batch

LEADS = 10
DEPLOY_SECONDS = 5.0  # how long the receiver answers 503
SCHEDULE = "5s,5s"  # two scheduled retries, a 10 s horizon


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API accepts an endpoint on 127.0.0.1 (the receiver)."""
    return settings.model_copy(update={"iln_allow_private": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver()
    await started.start()
    yield started
    await started.stop()


async def test_a_receiver_deploy_with_retry_after_is_waited_out_by_a_real_worker(
    client, account, clock, db, receiver, tmp_path
):
    postgres_only(db)
    await add_endpoint(client, account, receiver)
    receiver.default = Reply(503, headers={"Retry-After": "1"})
    events = [
        {"id": f"evt_{i}", **lead_event(reference=f"chk_{i}", occurred_at=clock.now())}
        for i in range(LEADS)
    ]
    response = await post_batch(client, account, events, clock=clock)
    assert response.json()["accepted"] == LEADS, response.text

    workers = Workers(
        worker_env(
            db.url,
            iln_allow_private="true",
            iln_interval_seconds=0.2,
            iln_retry_schedule=SCHEDULE,
        ),
        tmp_path,
    )
    try:
        await workers.start(1)
        await workers.wait_ready()
        await asyncio.sleep(DEPLOY_SECONDS)
        refused = len(receiver.posts)
        receiver.default = Reply(200)  # the deploy is over
        took = await wait_until(lambda: _all_delivered(client, account), limit=20)
        assert took is not None, (await deliveries(client, account), workers.logs())
        assert await workers.terminate(limit=30) == [0]
    finally:
        await workers.close()

    items = await deliveries(client, account)
    assert len(items) == LEADS
    assert {item["status"] for item in items} == {"delivered"}
    # More answers than the schedule has steps, and none of them used a step up.
    most = max(item["attempts"] for item in items)
    assert most > len(SCHEDULE.split(",")) + 1, items
    assert refused >= LEADS * 3
    delivered_ids = {r.webhook_id for r in receiver.posts}
    assert len(delivered_ids) == LEADS
    print(
        f"\nILN deploy of {DEPLOY_SECONDS:.0f} s (503, Retry-After: 1): {refused} answers "
        f"refused, all {LEADS} delivered {took:.1f} s after it ended, up to {most} attempts"
    )


async def _all_delivered(client: Any, account: dict[str, Any]) -> bool:
    items = await deliveries(client, account)
    return len(items) == LEADS and all(item["status"] == "delivered" for item in items)
