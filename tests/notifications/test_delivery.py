"""Notifications end to end: an event in leadflow -> outbox row -> signed POST to a real
receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from tests.notifications.helpers import add_endpoint, deliveries, only_delivery
from tests.support.api import auth
from tests.support.campaigns import create_campaign, step
from tests.support.events import event_body, post_event


def _capture(clock, **overrides):
    return event_body(occurred_at=clock.now().isoformat(), **overrides)


async def test_lead_captured_end_to_end(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver, event_types=["lead.captured"])
    r = await post_event(client, account, _capture(clock), clock=clock)
    assert r.status_code == 200, r.text
    lead_id = r.json()["lead_id"]

    pending = await only_delivery(client, account)
    assert pending["status"] == "pending"
    assert pending["attempts"] == 0
    assert pending["endpoint_id"] == endpoint["id"]
    assert pending["event_type"] == "lead.captured"
    assert receiver.requests == []  # nothing is sent inside the request

    report = await notifier.run_once()
    assert (report.claimed, report.delivered) == (1, 1)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.webhook_id == pending["webhook_id"]
    assert request.timestamp == str(int(clock.now().timestamp()))
    assert request.verified is True
    assert len(request.valid_under(endpoint["secret"])) == 1
    assert len(request.signatures) == 1

    body = request.json
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "lead.captured"
    assert dt.datetime.fromisoformat(body["timestamp"]) == clock.now()
    lead = body["data"]["lead"]
    assert lead["id"] == lead_id
    assert lead["customer"]["email"] == "jane@example.com"
    assert lead["status"] == "open"
    assert lead["amount"] == "49.00"
    assert body["data"]["campaign_id"] is None
    # the body is exactly what the API shows as the delivery's payload
    assert body == pending["payload"]

    done = await only_delivery(client, account)
    assert done["status"] == "delivered"
    assert done["attempts"] == 1
    assert done["last_status_code"] == 200
    assert done["last_error"] is None
    assert dt.datetime.fromisoformat(done["delivered_at"]) == clock.now()
    assert done["next_attempt_at"] is None

    report = await notifier.run_once()
    assert report.claimed == 0
    assert len(receiver.requests) == 1


async def test_event_type_filter(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver, event_types=["lead.converted"])
    r = await post_event(client, account, _capture(clock), clock=clock)
    assert r.status_code == 200, r.text
    lead_id = r.json()["lead_id"]
    assert await deliveries(client, account) == []
    await notifier.run_once()
    assert receiver.requests == []

    clock.advance(hours=1)
    purchase = _capture(clock, type="order.completed", reference="chk_1", amount="49.00")
    r = await post_event(client, account, purchase, clock=clock)
    assert r.status_code == 200, r.text
    assert r.json()["converted_lead_ids"] == [lead_id]

    report = await notifier.run_once()
    assert report.delivered == 1
    assert len(receiver.requests) == 1
    body = receiver.requests[0].json
    assert body["type"] == "lead.converted"
    assert body["data"]["lead"]["id"] == lead_id
    assert body["data"]["lead"]["status"] == "converted"
    conversion = body["data"]["conversion"]
    assert conversion["amount"] == "49.00"
    assert conversion["currency"] == "EUR"
    assert dt.datetime.fromisoformat(conversion["converted_at"]) == clock.now()


async def test_every_type_when_none_listed(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver)  # event_types [] = all
    await post_event(client, account, _capture(clock), clock=clock)
    clock.advance(minutes=5)
    await post_event(client, account, _capture(clock, type="order.completed"), clock=clock)
    await notifier.run_once()
    assert sorted(r.json["type"] for r in receiver.requests) == [
        "lead.captured",
        "lead.converted",
    ]


async def test_campaign_level_endpoint(client, account, clock, make_receiver, notifier):
    carts = await create_campaign(
        client, account, name="Carts", source="abandoned_checkout", status="active", steps=[step()]
    )
    trials = await create_campaign(
        client,
        account,
        name="Trials",
        source="trial",
        steps=[{"delay": "P1D", "template": "trial/1"}],
        status="active",
    )
    cart_receiver, account_receiver = await make_receiver(), await make_receiver()
    await add_endpoint(client, account, cart_receiver, campaign_id=carts["id"])
    await add_endpoint(client, account, account_receiver, event_types=["lead.captured"])

    r = await post_event(client, account, _capture(clock), clock=clock)
    cart_lead = r.json()["lead_id"]
    r = await post_event(
        client,
        account,
        _capture(clock, type="trial.started", reference="trial_1"),
        clock=clock,
    )
    trial_lead = r.json()["lead_id"]
    await notifier.run_once()

    assert [r.json["type"] for r in cart_receiver.requests] == ["lead.captured"]
    cart_body = cart_receiver.requests[0].json
    assert cart_body["data"]["lead"]["id"] == cart_lead
    assert cart_body["data"]["campaign_id"] == carts["id"]
    # campaign events of other campaigns do not reach it either
    r = await client.patch(
        f"/v1/campaigns/{trials['id']}", json={"status": "inactive"}, headers=auth(account)
    )
    assert r.status_code == 200, r.text
    await notifier.run_once()
    assert len(cart_receiver.requests) == 1

    by_lead = {r.json["data"]["lead"]["id"]: r.json for r in account_receiver.requests}
    assert set(by_lead) == {cart_lead, trial_lead}
    assert by_lead[trial_lead]["data"]["campaign_id"] == trials["id"]


async def test_disabled_endpoint_gets_nothing(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver, enabled=False)
    assert endpoint["enabled"] is False
    await post_event(client, account, _capture(clock), clock=clock)
    assert await deliveries(client, account) == []
    await notifier.run_once()
    assert receiver.requests == []

    r = await client.patch(
        f"/v1/iln/endpoints/{endpoint['id']}", json={"enabled": True}, headers=auth(account)
    )
    assert r.json()["enabled"] is True
    await post_event(client, account, _capture(clock, reference="chk_2"), clock=clock)
    await notifier.run_once()
    assert len(receiver.requests) == 1


async def test_disabling_holds_queued_notifications(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver)
    await post_event(client, account, _capture(clock), clock=clock)
    r = await client.patch(
        f"/v1/iln/endpoints/{endpoint['id']}", json={"enabled": False}, headers=auth(account)
    )
    assert r.status_code == 200
    report = await notifier.run_once()
    assert report.claimed == 0
    assert receiver.requests == []


async def test_campaign_activated_and_deactivated(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(
        client, account, receiver, event_types=["campaign.activated", "campaign.deactivated"]
    )
    campaign = await create_campaign(
        client, account, status="inactive", name="Cart recovery", steps=[step()]
    )
    assert await deliveries(client, account) == []
    path = f"/v1/campaigns/{campaign['id']}"
    r = await client.patch(path, json={"status": "active"}, headers=auth(account))
    assert r.status_code == 200, r.text
    clock.advance(seconds=1)
    r = await client.patch(path, json={"status": "inactive"}, headers=auth(account))
    assert r.status_code == 200, r.text
    r = await client.patch(path, json={"name": "Renamed"}, headers=auth(account))
    assert r.status_code == 200, r.text  # no status change: no notification

    report = await notifier.run_once()
    assert report.delivered == 2
    bodies = sorted((r.json for r in receiver.requests), key=lambda b: b["timestamp"])
    assert [b["type"] for b in bodies] == ["campaign.activated", "campaign.deactivated"]
    for body, status in zip(bodies, ["active", "inactive"], strict=True):
        assert body["data"] == {
            "campaign_id": campaign["id"],
            "name": "Cart recovery",
            "status": status,
        }
    assert all(r.verified for r in receiver.requests)
    assert {d["endpoint_id"] for d in await deliveries(client, account)} == {endpoint["id"]}


async def test_followup_sent_and_completed(
    client, account, clock, receiver, notifier, dispatcher, smtp_sink
):
    campaign = await create_campaign(
        client,
        account,
        steps=[
            {"delay": "PT2H", "template": "abandoned_checkout/1"},
            {"delay": "P1D", "template": "abandoned_checkout/2"},
        ],
        name="Cart recovery",
        status="active",
    )
    await add_endpoint(
        client, account, receiver, event_types=["followup.sent", "lead.followups_completed"]
    )
    r = await post_event(client, account, _capture(clock), clock=clock)
    lead_id = r.json()["lead_id"]

    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    await notifier.run_once()
    assert [r.json["type"] for r in receiver.requests] == ["followup.sent"]
    first = receiver.requests[0].json["data"]
    assert first["lead_id"] == lead_id
    assert first["campaign_id"] == campaign["id"]
    assert first["step"] == 1
    assert first["to"] == "jane@example.com"
    assert first["subject"] == smtp_sink.messages[0]["Subject"]
    assert dt.datetime.fromisoformat(first["sent_at"]) == clock.now()
    assert first["error"] is None

    clock.advance(days=1)
    assert (await dispatcher.run_once()).sent == 1
    await notifier.run_once()
    types = [r.json["type"] for r in receiver.requests]
    assert sorted(types[1:]) == ["followup.sent", "lead.followups_completed"]
    completed = next(r.json for r in receiver.requests if r.json["type"].startswith("lead."))
    assert completed["data"]["lead"]["id"] == lead_id
    assert completed["data"]["campaign_id"] == campaign["id"]
    assert completed["data"]["followups_sent"] == 2
    second = next(r.json for r in receiver.requests[1:] if r.json["type"] == "followup.sent")
    assert second["data"]["step"] == 2
    assert all(r.verified for r in receiver.requests)


async def test_lead_unsubscribed(client, account, clock, receiver, notifier, dispatcher, smtp_sink):
    await create_campaign(client, account, name="Cart recovery", status="active", steps=[step()])
    await add_endpoint(client, account, receiver, event_types=["lead.unsubscribed"])
    r = await post_event(client, account, _capture(clock), clock=clock)
    lead_id = r.json()["lead_id"]
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    await notifier.run_once()
    assert receiver.requests == []  # followup.sent not subscribed

    header = smtp_sink.messages[0]["List-Unsubscribe"]
    url = next(part.strip("<> ") for part in header.split(",") if "/u/" in part)
    r = await client.post(
        urlsplit(url).path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    await notifier.run_once()
    assert len(receiver.requests) == 1
    body = receiver.requests[0].json
    assert body["type"] == "lead.unsubscribed"
    assert body["data"]["lead"]["id"] == lead_id
    assert body["data"]["lead"]["status"] == "unsubscribed"
    assert receiver.requests[0].verified

    # unsubscribing again changes nothing and notifies nobody
    await client.post(urlsplit(url).path)
    await notifier.run_once()
    assert len(receiver.requests) == 1


async def test_followup_failed(client, account, clock, receiver, notifier, dispatcher, smtp_sink):
    campaign = await create_campaign(
        client, account, name="Cart recovery", status="active", steps=[step()]
    )
    await add_endpoint(client, account, receiver, event_types=["followup.failed"])
    r = await post_event(client, account, _capture(clock), clock=clock)
    lead_id = r.json()["lead_id"]
    smtp_sink.handler.reply = "550 5.1.1 no such user"
    clock.advance(hours=2)
    report = await dispatcher.run_once()
    assert report.failed == 1, report
    await notifier.run_once()
    [request] = receiver.requests
    assert request.verified
    body = request.json
    assert body["type"] == "followup.failed"
    assert body["data"]["lead_id"] == lead_id
    assert body["data"]["campaign_id"] == campaign["id"]
    assert body["data"]["step"] == 1
    assert "550" in body["data"]["error"]


async def test_updated_lead_is_not_captured_again(client, account, clock, receiver, notifier):
    await add_endpoint(client, account, receiver, event_types=["lead.captured"])
    first = await post_event(client, account, _capture(clock), clock=clock)
    clock.advance(minutes=5)
    again = await post_event(client, account, _capture(clock, amount="59.00"), clock=clock)
    assert again.json()["lead_id"] == first.json()["lead_id"]
    await notifier.run_once()
    assert len(receiver.requests) == 1
