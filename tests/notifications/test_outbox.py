"""The outbox row is written in the transaction that makes the change: no change, no
notification."""

from __future__ import annotations

import json

import pytest

from leadflow.notifications.schemas import CampaignStatusData, IlnEventType
from leadflow.notifications.service import emit
from tests.notifications.helpers import add_endpoint, count_deliveries
from tests.support.api import auth
from tests.support.events import event_body, post_event, signed_headers

URL = "https://hooks.example.net/x"


class Boom(Exception):
    pass


async def test_rolled_back_change_leaves_no_notification(client, account, clock, db):
    await add_endpoint(client, account, url=URL)
    data = CampaignStatusData(campaign_id="cmp_x", name="X", status="active")

    with pytest.raises(Boom):
        async with db.session() as s:
            queued = await emit(
                s, account["id"], IlnEventType.CAMPAIGN_ACTIVATED, data, clock.now()
            )
            assert queued == 1
            await s.flush()  # the row reached the database, inside the transaction
            raise Boom
    assert await count_deliveries(db) == 0

    async with db.session() as s:  # the control: committed, it stays
        await emit(s, account["id"], IlnEventType.CAMPAIGN_ACTIVATED, data, clock.now())
    assert await count_deliveries(db) == 1


async def test_emit_only_for_that_account(client, account, other_account, clock, db):
    await add_endpoint(client, other_account, url=URL)
    data = CampaignStatusData(campaign_id="cmp_x", name="X", status="active")
    async with db.session() as s:
        assert await emit(s, account["id"], IlnEventType.CAMPAIGN_ACTIVATED, data, clock.now()) == 0
    assert await count_deliveries(db) == 0


async def test_refused_webhooks_queue_nothing(client, account, clock, db):
    await add_endpoint(client, account, url=URL)
    now = clock.now().isoformat()

    bad = event_body(occurred_at=now)
    bad["customer"] = {**bad["customer"], "email": "not-an-email"}
    r = await post_event(client, account, bad, clock=clock)
    assert r.status_code == 422, r.text

    r = await post_event(
        client, account, event_body(occurred_at=now, type="cart.exploded"), clock=clock
    )
    assert r.status_code == 422, r.text

    raw = json.dumps(event_body(occurred_at=now)).encode()
    headers = signed_headers("whsec_" + "QUJD" * 8, raw, timestamp=int(clock.now().timestamp()))
    r = await client.post(f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers)
    assert r.status_code == 401, r.text
    assert await count_deliveries(db) == 0

    # a good one is queued once, and its replay (same webhook-id) queues nothing more
    good = event_body(occurred_at=now)
    r = await post_event(client, account, good, clock=clock, msg_id="msg_once")
    assert r.status_code == 200 and r.json()["duplicate"] is False
    r = await post_event(client, account, good, clock=clock, msg_id="msg_once")
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert await count_deliveries(db) == 1


async def test_refused_campaign_changes_queue_nothing(client, account, db):
    await add_endpoint(client, account, url=URL, event_types=["campaign.activated"])
    r = await client.post(
        "/v1/campaigns", json={"name": "Empty", "status": "active"}, headers=auth(account)
    )
    assert r.status_code == 422, r.text  # active without a variant
    r = await client.post("/v1/campaigns", json={"name": "Empty"}, headers=auth(account))
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"/v1/campaigns/{r.json()['id']}", json={"status": "active"}, headers=auth(account)
    )
    assert r.status_code == 422, r.text
    assert await count_deliveries(db) == 0
