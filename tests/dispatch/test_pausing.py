"""Switches: the account's global switch, campaign status, lead groups, archiving."""

from __future__ import annotations

import datetime as dt

from tests.dispatch.helpers import THREE_STEPS, enrollment, event_now, messages
from tests.support.api import auth, put_settings
from tests.support.campaigns import create_campaign, patch_campaign
from tests.support.events import ingest


async def test_global_switch_off_holds_the_due_step_and_on_sends_it_once(
    client, account, clock, dispatcher, smtp_sink, db
):
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    settings = await put_settings(client, account, lead_management_enabled=False)
    assert settings["lead_management_enabled"] is False

    clock.advance(hours=2)
    for _ in range(3):
        assert (await dispatcher.run_once()).claimed == 0
        clock.advance(hours=6)
    assert smtp_sink.messages == []
    assert await messages(db) == []
    enr = await enrollment(db)
    assert enr.state == "active" and enr.next_step == 1

    await put_settings(client, account, lead_management_enabled=True)
    report = await dispatcher.run_once()
    assert report.sent == 1, report
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
    step1_at = clock.now()

    # Pausing and resuming after a step was sent never sends it again.
    await put_settings(client, account, lead_management_enabled=False)
    clock.advance(days=2)
    assert (await dispatcher.run_once()).claimed == 0
    await put_settings(client, account, lead_management_enabled=True)
    assert (await dispatcher.run_once()).sent == 1
    assert (await dispatcher.run_once()).claimed == 0
    rows = await messages(db)
    assert [(m.step, m.status) for m in rows] == [(1, "sent"), (2, "sent")]
    assert rows[0].sent_at == step1_at
    assert len(smtp_sink.messages) == 2
    assert smtp_sink.messages[0]["Message-ID"] != smtp_sink.messages[1]["Message-ID"]


async def test_inactive_campaign_waits_and_resumes_when_reactivated(
    client, account, clock, dispatcher, smtp_sink, db
):
    campaign = await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1

    await patch_campaign(client, account, campaign["id"], status="inactive", expect=200)
    clock.advance(days=1)
    assert (await dispatcher.run_once()).claimed == 0
    clock.advance(days=3)
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
    enr = await enrollment(db)
    assert enr.state == "active" and enr.next_step == 2

    await patch_campaign(client, account, campaign["id"], status="active", expect=200)
    assert (await dispatcher.run_once()).sent == 1
    assert [m.step for m in await messages(db)] == [1, 2]
    assert len(smtp_sink.messages) == 2


async def test_inactive_lead_group_waits(client, account, clock, dispatcher, smtp_sink, db):
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    response = await client.patch(
        "/v1/lead-groups/abandoned_checkout", json={"status": "inactive"}, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "inactive"

    clock.advance(hours=3)
    assert (await dispatcher.run_once()).claimed == 0
    clock.advance(days=1)
    assert (await dispatcher.run_once()).claimed == 0
    assert smtp_sink.messages == []
    assert (await enrollment(db)).state == "active"

    # Another group switched off does not hold this one.
    response = await client.patch(
        "/v1/lead-groups/abandoned_checkout", json={"status": "active"}, headers=auth(account)
    )
    assert response.status_code == 200
    response = await client.patch(
        "/v1/lead-groups/trial", json={"status": "inactive"}, headers=auth(account)
    )
    assert response.status_code == 200
    assert (await dispatcher.run_once()).sent == 1
    assert len(smtp_sink.messages) == 1


async def test_archived_campaign_stops_its_enrollments(
    client, account, clock, dispatcher, smtp_sink, db
):
    campaign = await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1

    response = await client.delete(f"/v1/campaigns/{campaign['id']}", headers=auth(account))
    assert response.status_code == 200, response.text
    assert response.json()["archived_at"] is not None

    clock.advance(days=1)
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.stopped == 1, report
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "campaign_archived"
    for _ in range(3):
        clock.advance(days=1)
        assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
    assert [m.step for m in await messages(db)] == [1]


async def test_archived_before_first_step_sends_nothing(
    client, account, clock, dispatcher, smtp_sink, db
):
    campaign = await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    response = await client.delete(f"/v1/campaigns/{campaign['id']}", headers=auth(account))
    assert response.status_code == 200
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).stopped == 1
    clock.advance(days=3)
    assert (await dispatcher.run_once()).claimed == 0
    assert smtp_sink.messages == []
    assert await messages(db) == []
    assert (await enrollment(db)).stop_reason == "campaign_archived"


async def test_campaign_ended_stops(client, account, clock, dispatcher, smtp_sink, db):
    ends = clock.now() + dt.timedelta(days=1)
    await create_campaign(
        client, account, ends_at=ends.isoformat(), steps=THREE_STEPS, status="active"
    )
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    clock.advance(days=1)  # step 2 due exactly when the campaign ends
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.stopped == 1
    assert (await enrollment(db)).stop_reason == "campaign_ended"
    assert len(smtp_sink.messages) == 1
