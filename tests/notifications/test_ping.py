"""POST /v1/iln/endpoints/{id}/test: a signed ping, sent right away, outcome in the answer."""

from __future__ import annotations

import datetime as dt

from tests.notifications.helpers import add_endpoint, deliveries
from tests.notifications.receiver import Reply
from tests.support.api import auth


async def test_ping_delivered(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver, event_types=["lead.converted"])
    r = await client.post(f"/v1/iln/endpoints/{endpoint['id']}/test", headers=auth(account))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["event_type"] == "ping"
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("delivered", 1, 200)
    assert shown["last_error"] is None
    assert dt.datetime.fromisoformat(shown["delivered_at"]) == clock.now()

    [request] = receiver.requests
    assert request.verified
    assert len(request.valid_under(endpoint["secret"])) == 1
    assert request.webhook_id == shown["webhook_id"]
    assert request.json == {
        "type": "ping",
        "timestamp": request.json["timestamp"],
        "data": {"endpoint_id": endpoint["id"]},
    }
    assert dt.datetime.fromisoformat(request.json["timestamp"]) == clock.now()
    assert request.json == shown["payload"]

    [logged] = await deliveries(client, account)
    assert logged["id"] == shown["id"] and logged["status"] == "delivered"
    assert (await notifier.run_once()).claimed == 0
    assert len(receiver.requests) == 1


async def test_ping_receiver_down(client, account, clock, receiver, notifier):
    endpoint = await add_endpoint(client, account, receiver)
    await receiver.stop()
    r = await client.post(f"/v1/iln/endpoints/{endpoint['id']}/test", headers=auth(account))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("failed", 1, None)
    assert "ConnectError" in shown["last_error"]
    assert shown["next_attempt_at"] is None

    [logged] = await deliveries(client, account)
    assert logged["status"] == "failed"  # what was answered is what was stored
    assert logged["next_attempt_at"] is None
    await receiver.start()
    clock.advance(hours=1)
    assert (await notifier.run_once()).claimed == 0  # a ping is not retried
    assert receiver.requests == []


async def test_ping_error_status(client, account, receiver):
    endpoint = await add_endpoint(client, account, receiver)
    receiver.then(Reply(500, body=b"broken"))
    r = await client.post(f"/v1/iln/endpoints/{endpoint['id']}/test", headers=auth(account))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert (shown["status"], shown["last_status_code"], shown["last_error"]) == (
        "failed",
        500,
        "broken",
    )


async def test_ping_refused_by_guarded_app(client, guarded_client, account, receiver):
    """Saved while private addresses were allowed; the guarded app refuses to connect."""
    endpoint = await add_endpoint(client, account, receiver)
    r = await guarded_client.post(f"/v1/iln/endpoints/{endpoint['id']}/test", headers=auth(account))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert "non-public" in r.json()["last_error"]
    assert receiver.requests == []


async def test_ping_unknown_endpoint(client, account):
    r = await client.post("/v1/iln/endpoints/ep_nope/test", headers=auth(account))
    assert r.status_code == 404
