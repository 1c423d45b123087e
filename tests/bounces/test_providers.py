"""Each provider's documented webhook, signed its own way, over HTTP: a bounce after a real
follow-up went through the SMTP sink suppresses the address, stops the sequence, marks the
follow-up and notifies a real ILN receiver; a forged one is refused with nothing written;
a redelivery changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.bounces.helpers import configure, message_rows, post, suppressions, written
from tests.bounces.providers import PROVIDERS, Provider
from tests.dispatch.helpers import THREE_STEPS, enrollment, event_now
from tests.notifications.helpers import add_endpoint
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

EMAIL = "jane@example.com"  # the address of tests.dispatch.helpers.event_now


@pytest.fixture(params=PROVIDERS, ids=str)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param


async def _sent(client, account, clock, dispatcher):
    """One real follow-up, through the SMTP sink."""
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    lead = await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    clock.advance(minutes=10)
    return lead


@pytest.mark.parametrize(
    ("kind", "event_type", "reason"),
    [("hard", "lead.bounced", "bounced"), ("complaint", "lead.complained", "complaint")],
)
async def test_a_report_suppresses_stops_marks_and_notifies(
    provider,
    kind,
    event_type,
    reason,
    client,
    account,
    clock,
    dispatcher,
    smtp_sink,
    db,
    notifier,
    receiver,
):
    await configure(client, account, provider.name, provider.secret)
    await add_endpoint(client, account, receiver, event_types=[event_type])
    lead = await _sent(client, account, clock, dispatcher)
    assert len(smtp_sink.messages) == 1
    (message,) = await message_rows(db)
    header = message.message_id_header
    assert header == str(smtp_sink.messages[0]["Message-ID"])

    body, headers = provider.build(EMAIL, clock.now(), kind, header, 1)
    response = await post(client, account, provider.name, body, headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    (report,) = answer["reports"]
    assert report["kind"] == {"hard": "hard_bounce", "complaint": "complaint"}[kind]
    assert report["email"] == EMAIL
    assert report["suppressed"] is True and report["duplicate"] is False
    assert report["message_id"] == message.id
    if provider.name == "sendgrid":
        assert answer["ignored"] == 1  # the "delivered" event of the same batch

    (suppression,) = await suppressions(db)
    assert (suppression.email, suppression.reason) == (EMAIL, reason)
    stopped = await enrollment(db)
    assert (stopped.state, stopped.stop_reason) == ("stopped", "suppressed")
    (marked,) = await message_rows(db)
    assert marked.bounce == report["kind"]

    await notifier.run_once()
    (notification,) = receiver.posts
    assert notification.verified is True
    assert notification.json["type"] == event_type
    data = notification.json["data"]
    assert data["lead"]["id"] == lead["lead_id"]
    assert data["kind"] == report["kind"] and data["provider"] == provider.name
    assert (data["message_id"], data["step"]) == (message.id, 1)

    # The provider redelivers: the same answer, marked duplicate, and nothing more written.
    before = await written(db)
    again = await post(client, account, provider.name, body, headers)
    assert again.status_code == 200, again.text
    (repeat,) = again.json()["reports"]
    assert repeat["duplicate"] is True and repeat["outcome_id"] == report["outcome_id"]
    assert await written(db) == before
    # Later follow-ups are not sent.
    clock.advance(days=3)
    await dispatcher.run_once()
    assert len(smtp_sink.messages) == 1


async def test_a_forged_delivery_is_refused_and_writes_nothing(
    provider, client, account, clock, dispatcher, db
):
    await configure(client, account, provider.name, provider.secret)
    await _sent(client, account, clock, dispatcher)
    (message,) = await message_rows(db)
    before = await written(db)
    body, headers = provider.forge(EMAIL, clock.now(), "hard", message.message_id_header, 2)
    response = await post(client, account, provider.name, body, headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_signature"
    assert await written(db) == before
    assert (await enrollment(db)).state == "active"
    (unmarked,) = await message_rows(db)
    assert unmarked.bounce is None


async def test_an_unconfigured_provider_is_refused(provider, client, account, db):
    body, headers = provider.build(EMAIL, dt.datetime.now(dt.UTC), "hard", "<a@b>", 3)
    response = await post(client, account, provider.name, body, headers)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "integration_not_configured"
    assert (await written(db)).outcomes == 0


async def test_a_bounce_of_an_unknown_address_is_stored_and_suppressed(
    provider, client, account, clock, db, notifier, receiver
):
    """Nothing was sent to it from leadflow (yet): the address is still suppressed."""
    await configure(client, account, provider.name, provider.secret)
    body, headers = provider.build("nobody@example.org", clock.now(), "hard", "<x@y>", 4)
    response = await post(client, account, provider.name, body, headers)
    assert response.status_code == 200, response.text
    (report,) = response.json()["reports"]
    assert report["message_id"] is None and report["suppressed"] is True
    (suppression,) = await suppressions(db)
    assert suppression.email == "nobody@example.org"
