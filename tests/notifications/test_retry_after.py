"""A receiver's Retry-After is honoured without using up the retry schedule: the schedule is a
time horizon (about three days by default), not a number of answers."""

from __future__ import annotations

import datetime as dt

from tests.notifications.helpers import add_endpoint, only_delivery
from tests.notifications.receiver import Reply
from tests.support.events import event_body, post_event


async def _capture(client, account, clock) -> None:
    body = event_body(occurred_at=clock.now().isoformat())
    response = await post_event(client, account, body, clock=clock)
    assert response.status_code == 200, response.text


async def test_a_deploy_answering_503_retry_after_loses_nothing(
    client, account, clock, receiver, notifier
):
    # A 90 s deploy: every attempt meanwhile answers 503 with "come back in 5 s".
    await add_endpoint(client, account, receiver)
    receiver.then(*[Reply(503, headers={"Retry-After": "5"}) for _ in range(18)])
    await _capture(client, account, clock)
    for _ in range(18):
        report = await notifier.run_once()
        assert report.retried == 1 and report.failed == 0, report
        clock.advance(seconds=5)
    assert (await notifier.run_once()).delivered == 1
    delivery = await only_delivery(client, account)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 19)
    assert len(receiver.requests) == 19


async def test_retry_after_cannot_keep_a_delivery_alive_past_the_horizon(
    client, account, clock, receiver, make_notifier
):
    notifier = make_notifier(iln_retry_schedule="10s,20s")  # a 30 s horizon
    receiver.default = Reply(503, headers={"Retry-After": "4"})
    await add_endpoint(client, account, receiver)
    await _capture(client, account, clock)
    start = clock.now()
    for _ in range(50):
        await notifier.run_once()
        delivery = await only_delivery(client, account)
        if delivery["status"] == "failed":
            break
        clock.set(dt.datetime.fromisoformat(delivery["next_attempt_at"].replace("Z", "+00:00")))
    assert delivery["status"] == "failed"
    # Honoured every 4 s up to the 30 s horizon, then the two scheduled waits (10 s, 20 s).
    assert dt.timedelta(seconds=30) <= clock.now() - start <= dt.timedelta(seconds=70)
    assert 9 <= delivery["attempts"] <= 12
