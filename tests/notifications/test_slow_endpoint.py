"""Endpoints are served concurrently: a slow receiver delays only its own notifications."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.notifications.helpers import add_endpoint, deliveries
from tests.notifications.receiver import Reply
from tests.support.api import auth
from tests.support.events import event_body, post_event

SLOW = 1.5  # seconds the slow receiver takes per request (real time)


async def wait_until(condition: Callable[[], object], within: float = 4.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


async def test_slow_endpoint_does_not_hold_up_others(
    client, account, clock, make_receiver, notifier
):
    slow, fast = await make_receiver(), await make_receiver()
    slow.default = Reply(delay=SLOW)
    slow_ep = await add_endpoint(client, account, slow)
    fast_ep = await add_endpoint(client, account, fast)
    r = await post_event(
        client, account, event_body(occurred_at=clock.now().isoformat()), clock=clock
    )
    assert r.status_code == 200

    started = time.monotonic()
    await notifier.tick()
    assert time.monotonic() - started < SLOW  # tick starts the work and returns

    await wait_until(lambda: len(fast.requests) == 1 and len(slow.requests) == 1)

    async def status(endpoint_id: str) -> list[str]:
        return [d["status"] for d in await deliveries(client, account, endpoint_id=endpoint_id)]

    for _ in range(200):
        if await status(fast_ep["id"]) == ["delivered"]:
            break
        await asyncio.sleep(0.02)
    assert await status(fast_ep["id"]) == ["delivered"]
    assert time.monotonic() - started < SLOW  # the slow receiver has not answered yet
    assert await status(slow_ep["id"]) == ["pending"]

    # While the slow endpoint is busy, the next tick serves the others and leaves it alone.
    body = event_body(occurred_at=clock.now().isoformat(), reference="chk_2")
    assert (await post_event(client, account, body, clock=clock)).status_code == 200
    await notifier.tick()
    await wait_until(lambda: len(fast.requests) == 2)
    assert len(slow.requests) == 1
    assert time.monotonic() - started < SLOW

    for _ in range(200):
        if await status(slow_ep["id"]) == ["pending", "delivered"] or (
            sorted(await status(slow_ep["id"])) == ["delivered", "pending"]
        ):
            break
        await asyncio.sleep(0.05)
    assert sorted(await status(slow_ep["id"])) == ["delivered", "pending"]
    assert len(slow.requests) == 1
    assert all(r.verified for r in slow.requests + fast.requests)

    # the held notification goes on the next tick
    slow.default = Reply()
    await notifier.tick()
    await wait_until(lambda: len(slow.requests) == 2)
    for _ in range(100):
        if await status(slow_ep["id"]) == ["delivered", "delivered"]:
            break
        await asyncio.sleep(0.02)
    assert await status(slow_ep["id"]) == ["delivered", "delivered"]


async def test_endpoint_deleted_while_delivering(client, account, clock, receiver, notifier):
    receiver.default = Reply(delay=0.3)
    endpoint = await add_endpoint(client, account, receiver)
    for reference in ("chk_1", "chk_2"):
        body = event_body(occurred_at=clock.now().isoformat(), reference=reference)
        assert (await post_event(client, account, body, clock=clock)).status_code == 200

    run = asyncio.create_task(notifier.run_once())
    await wait_until(lambda: len(receiver.requests) == 1)
    r = await client.delete(f"/v1/iln/endpoints/{endpoint['id']}", headers=auth(account))
    assert r.status_code == 204
    report = await asyncio.wait_for(run, timeout=5)  # no crash when recording the outcome
    assert (report.claimed, report.delivered) == (2, 0)
    assert len(receiver.requests) == 1  # the second one was deleted before its turn
    assert await deliveries(client, account) == []
