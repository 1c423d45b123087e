"""Failures, retries on the schedule, Retry-After, 410, dead letters, redirects, redelivery
and the delivery log."""

from __future__ import annotations

import datetime as dt
import email.utils

from tests.notifications.helpers import add_endpoint, deliveries, only_delivery
from tests.notifications.receiver import Reply
from tests.support.api import auth
from tests.support.events import event_body, post_event


def _at(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


async def _capture(client, account, clock, reference: str = "chk_1") -> str:
    body = event_body(occurred_at=clock.now().isoformat(), reference=reference)
    body["customer"] = {**body["customer"], "email": f"{reference}@example.com"}
    r = await post_event(client, account, body, clock=clock)
    assert r.status_code == 200, r.text
    return r.json()["lead_id"]


async def test_receiver_down_then_back(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver)
    await receiver.stop()
    await _capture(client, account, clock)
    first_try = clock.now()

    report = await notifier.run_once()
    assert (report.claimed, report.delivered, report.retried) == (1, 0, 1)
    delivery = await only_delivery(client, account)
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] is None
    assert "ConnectError" in delivery["last_error"]
    assert _at(delivery["last_attempt_at"]) == first_try
    wait = _at(delivery["next_attempt_at"]) - first_try
    assert dt.timedelta(seconds=5) <= wait <= dt.timedelta(seconds=5.5), wait

    clock.advance(seconds=4.9)
    assert (await notifier.run_once()).claimed == 0
    await receiver.start()  # same port
    assert (await notifier.run_once()).claimed == 0  # up, but not due yet

    receiver.then(Reply(503, body=b"warming up"))  # the second attempt fails too
    clock.set(_at(delivery["next_attempt_at"]))
    report = await notifier.run_once()
    assert (report.delivered, report.retried) == (0, 1)
    delivery = await only_delivery(client, account)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        2,
        503,
    )
    wait = _at(delivery["next_attempt_at"]) - clock.now()
    assert dt.timedelta(minutes=5) <= wait <= dt.timedelta(minutes=5.5), wait

    clock.set(_at(delivery["next_attempt_at"]))
    report = await notifier.run_once()
    assert report.delivered == 1
    assert len(receiver.requests) == 2
    assert {r.webhook_id for r in receiver.requests} == {delivery["webhook_id"]}
    assert receiver.requests[0].body == receiver.requests[1].body
    request = receiver.requests[1]
    assert request.timestamp == str(int(clock.now().timestamp()))  # fresh per attempt
    assert request.verified
    delivery = await only_delivery(client, account)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        3,
        200,
    )
    assert delivery["last_error"] is None

    clock.advance(hours=1)
    assert (await notifier.run_once()).claimed == 0
    assert len(receiver.requests) == 2


async def test_500_then_200(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver)
    receiver.then(Reply(500, body=b"database on fire"))
    await _capture(client, account, clock)

    report = await notifier.run_once()
    assert (report.delivered, report.retried) == (0, 1)
    delivery = await only_delivery(client, account)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        1,
        500,
    )
    assert delivery["last_error"] == "database on fire"

    clock.advance(seconds=6)
    report = await notifier.run_once()
    assert report.delivered == 1
    assert len(receiver.requests) == 2
    assert {r.webhook_id for r in receiver.requests} == {delivery["webhook_id"]}
    assert receiver.requests[0].body == receiver.requests[1].body
    delivery = await only_delivery(client, account)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        2,
        200,
    )
    r = await client.get(
        "/v1/iln/deliveries", params={"status": "delivered"}, headers=auth(account)
    )
    assert len(r.json()["items"]) == 1


async def test_410_disables_the_endpoint(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver)
    receiver.then(410)
    await _capture(client, account, clock, "chk_1")
    await _capture(client, account, clock, "chk_2")

    report = await notifier.run_once()
    assert (report.claimed, report.failed, report.delivered) == (2, 1, 0)
    assert len(receiver.requests) == 1  # the second was not attempted

    path = f"/v1/iln/endpoints/{endpoint['id']}"
    shown = (await client.get(path, headers=auth(account))).json()
    assert shown["enabled"] is False
    assert shown["disabled_reason"] and "410" in shown["disabled_reason"]
    by_status = {d["status"]: d for d in await deliveries(client, account)}
    assert set(by_status) == {"failed", "pending"}
    assert by_status["failed"]["last_status_code"] == 410
    assert by_status["failed"]["next_attempt_at"] is None
    assert by_status["pending"]["attempts"] == 0

    # later notifications are not queued, held ones not attempted
    await _capture(client, account, clock, "chk_3")
    assert len(await deliveries(client, account)) == 2
    clock.advance(days=2)
    assert (await notifier.run_once()).claimed == 0
    assert len(receiver.requests) == 1

    # re-enabling clears the reason and sends what was held
    r = await client.patch(path, json={"enabled": True}, headers=auth(account))
    assert r.json()["enabled"] is True
    assert r.json()["disabled_reason"] is None
    assert (await notifier.run_once()).delivered == 1
    assert len(receiver.requests) == 2


async def test_429_with_retry_after_seconds(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver)
    receiver.then(Reply(429, headers={"Retry-After": "120"}))
    await _capture(client, account, clock)
    now = clock.now()
    await notifier.run_once()
    delivery = await only_delivery(client, account)
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 429
    assert _at(delivery["next_attempt_at"]) == now + dt.timedelta(seconds=120)

    clock.advance(seconds=119)
    assert (await notifier.run_once()).claimed == 0
    clock.advance(seconds=1)
    assert (await notifier.run_once()).delivered == 1
    assert len(receiver.requests) == 2


async def test_503_with_retry_after_date(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver)
    later = clock.now() + dt.timedelta(hours=1)
    receiver.then(Reply(503, headers={"Retry-After": email.utils.format_datetime(later, True)}))
    await _capture(client, account, clock)
    await notifier.run_once()
    delivery = await only_delivery(client, account)
    assert _at(delivery["next_attempt_at"]) == later


async def test_429_without_retry_after_follows_schedule(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver)
    receiver.then(429)
    await _capture(client, account, clock)
    now = clock.now()
    await notifier.run_once()
    wait = _at((await only_delivery(client, account))["next_attempt_at"]) - now
    assert dt.timedelta(seconds=5) <= wait <= dt.timedelta(seconds=5.5)


async def test_schedule_exhausted_is_a_dead_letter(client, account, clock, receiver, make_notifier):
    notifier = make_notifier(iln_retry_schedule="1s,2s")
    receiver.default = Reply(500, body=b"nope")
    await add_endpoint(client, account, receiver)
    await _capture(client, account, clock)
    start = clock.now()

    await notifier.run_once()
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"]) == ("pending", 1)
    assert dt.timedelta(seconds=1) <= _at(d["next_attempt_at"]) - start <= dt.timedelta(seconds=1.1)

    clock.set(_at(d["next_attempt_at"]))
    await notifier.run_once()
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"]) == ("pending", 2)
    wait = _at(d["next_attempt_at"]) - clock.now()
    assert dt.timedelta(seconds=2) <= wait <= dt.timedelta(seconds=2.2)

    clock.set(_at(d["next_attempt_at"]))
    report = await notifier.run_once()
    assert report.failed == 1
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("failed", 3, 500)
    assert d["next_attempt_at"] is None
    assert d["last_error"] == "nope"
    assert len(receiver.requests) == 3
    assert {r.webhook_id for r in receiver.requests} == {d["webhook_id"]}

    clock.advance(days=3)
    assert (await notifier.run_once()).claimed == 0
    r = await client.get("/v1/iln/deliveries", params={"status": "failed"}, headers=auth(account))
    assert [i["id"] for i in r.json()["items"]] == [d["id"]]


async def test_redirects_not_followed(client, account, clock, make_receiver, notifier):
    receiver, target = await make_receiver(), await make_receiver()
    await add_endpoint(client, account, receiver)
    receiver.then(
        Reply(302, headers={"Location": target.url}),
        Reply(307, headers={"Location": target.url}),
    )
    await _capture(client, account, clock)

    await notifier.run_once()
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 302)
    clock.advance(minutes=1)
    await notifier.run_once()
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 2, 307)
    assert target.requests == []
    clock.advance(hours=1)
    await notifier.run_once()
    assert (await only_delivery(client, account))["status"] == "delivered"
    assert target.requests == []
    assert len(receiver.requests) == 3


async def test_redeliver(client, account, clock, receiver, make_notifier):
    notifier = make_notifier(iln_retry_schedule="1s")
    await add_endpoint(client, account, receiver)
    await _capture(client, account, clock)
    await notifier.run_once()
    d = await only_delivery(client, account)
    assert d["status"] == "delivered"
    redeliver = f"/v1/iln/deliveries/{d['id']}/redeliver"

    clock.advance(minutes=10)
    r = await client.post(redeliver, headers=auth(account))
    assert r.status_code == 200, r.text
    again = r.json()
    assert (again["status"], again["attempts"]) == ("pending", 0)
    assert again["webhook_id"] == d["webhook_id"]
    assert _at(again["next_attempt_at"]) == clock.now()

    r = await client.post(redeliver, headers=auth(account))
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "already_pending"

    await notifier.run_once()
    assert len(receiver.requests) == 2
    assert receiver.requests[0].webhook_id == receiver.requests[1].webhook_id == d["webhook_id"]
    assert receiver.requests[0].body == receiver.requests[1].body
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"]) == ("delivered", 1)

    # a dead letter comes back to life the same way
    receiver.default = Reply(500)
    clock.advance(minutes=10)
    assert (await client.post(redeliver, headers=auth(account))).status_code == 200
    await notifier.run_once()
    clock.advance(seconds=2)
    await notifier.run_once()
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"]) == ("failed", 2)
    receiver.default = Reply(200)
    assert (await client.post(redeliver, headers=auth(account))).status_code == 200
    await notifier.run_once()
    d = await only_delivery(client, account)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 1, 200)
    assert {r.webhook_id for r in receiver.requests} == {d["webhook_id"]}
    assert len(receiver.requests) == 5

    r = await client.post("/v1/iln/deliveries/dlv_nope/redeliver", headers=auth(account))
    assert r.status_code == 404


async def test_delivery_filters_and_pagination(client, account, clock, make_receiver, notifier):
    up, down = await make_receiver(), await make_receiver()
    every = await add_endpoint(client, account, up)
    captures = await add_endpoint(client, account, down, event_types=["lead.captured"])
    await down.stop()
    for i in range(3):
        await _capture(client, account, clock, f"chk_{i}")
        clock.advance(seconds=1)
    purchase = event_body(
        type="order.completed", occurred_at=clock.now().isoformat(), reference="chk_0"
    )
    purchase["customer"] = {**purchase["customer"], "email": "chk_0@example.com"}
    assert (await post_event(client, account, purchase, clock=clock)).status_code == 200
    await notifier.run_once()

    everything = await deliveries(client, account)
    assert len(everything) == 7  # 3 captures x 2 endpoints + 1 conversion
    created = [(_at(d["created_at"]), d["id"]) for d in everything]
    assert created == sorted(created, reverse=True)  # newest first

    mine = await deliveries(client, account, endpoint_id=every["id"])
    assert len(mine) == 4 and {d["endpoint_id"] for d in mine} == {every["id"]}
    assert {d["status"] for d in mine} == {"delivered"}
    pending = await deliveries(client, account, status="pending")
    assert len(pending) == 3 and {d["endpoint_id"] for d in pending} == {captures["id"]}
    converted = await deliveries(client, account, event_type="lead.converted")
    assert [d["endpoint_id"] for d in converted] == [every["id"]]
    both = await deliveries(client, account, endpoint_id=captures["id"], status="delivered")
    assert both == []
    assert await deliveries(client, account, event_type="lead.captured", status="failed") == []

    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/iln/deliveries", params=params, headers=auth(account))
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) <= 2
        seen += [d["id"] for d in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [d["id"] for d in everything]

    seen, cursor = [], None
    for _ in range(10):
        params = {
            "limit": 1,
            "endpoint_id": captures["id"],
            **({"cursor": cursor} if cursor else {}),
        }
        r = await client.get("/v1/iln/deliveries", params=params, headers=auth(account))
        seen += [d["id"] for d in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [d["id"] for d in everything if d["endpoint_id"] == captures["id"]]

    for params in ({"status": "bogus"}, {"cursor": "!!!"}, {"limit": 0}):
        r = await client.get("/v1/iln/deliveries", params=params, headers=auth(account))
        assert r.status_code == 422, (params, r.text)
