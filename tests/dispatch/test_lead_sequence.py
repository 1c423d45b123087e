"""GET /v1/leads/{id} shows the lead's follow-up sequence and the conversion it earned."""

from __future__ import annotations

import datetime as dt

from tests.dispatch.helpers import THREE_STEPS, event_now
from tests.support.api import auth
from tests.support.campaigns import create_campaign
from tests.support.events import ingest, iso, purchase


async def _lead(client, account, lead_id):
    response = await client.get(f"/v1/leads/{lead_id}", headers=auth(account))
    assert response.status_code == 200, response.text
    return response.json()


async def test_sequence_and_conversion_on_the_lead(client, account, clock, dispatcher, smtp_sink):
    campaign = await create_campaign(client, account, steps=THREE_STEPS, status="active")
    variant_id = campaign["variants"][0]["id"]
    lead_id = (await ingest(client, account, clock, event_now(clock, timezone=None)))["lead_id"]

    waiting = await _lead(client, account, lead_id)
    assert waiting["sequence"]["state"] == "active"
    assert waiting["sequence"]["next_step"] == 1 and waiting["sequence"]["followups"] == []
    assert waiting["conversion"] is None

    clock.advance(dt.timedelta(hours=2))
    assert (await dispatcher.run_once()).sent == 1
    sent_at = clock.now()
    after_one = (await _lead(client, account, lead_id))["sequence"]
    assert after_one["campaign_id"] == campaign["id"] and after_one["variant_id"] == variant_id
    assert after_one["next_step"] == 2
    assert after_one["next_due_at"] == iso(sent_at + dt.timedelta(days=1))
    (followup,) = after_one["followups"]
    assert followup["step"] == 1 and followup["status"] == "sent"
    assert (
        followup["sent_at"] == iso(sent_at)
        and followup["subject"] == smtp_sink.messages[0]["Subject"]
    )

    clock.advance(dt.timedelta(hours=3))
    await purchase(client, account, clock, amount="59.00", currency="EUR", email="jane@example.com")
    bought = await _lead(client, account, lead_id)
    assert bought["status"] == "converted"
    assert bought["sequence"]["state"] == "stopped"
    assert bought["sequence"]["stop_reason"] == "converted"
    assert bought["sequence"]["next_step"] is None
    assert bought["conversion"] == {
        "converted_at": iso(clock.now()),
        "amount": "59.00",
        "currency": "EUR",
        "campaign_id": campaign["id"],
        "variant_id": variant_id,
        "step": 1,
    }


async def test_a_lead_no_campaign_took_has_no_sequence(client, account, clock):
    lead_id = (await ingest(client, account, clock, event_now(clock)))["lead_id"]
    lead = await _lead(client, account, lead_id)
    assert lead["sequence"] is None and lead["conversion"] is None
