"""When follow-ups may go out: the local send window (across DST) and the frequency cap."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.models.enrollments import Message
from tests.dispatch.helpers import enrollment, enrollments, event_now, messages, recipients
from tests.support.api import put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

UTC = dt.UTC
WINDOW = {"start": "09:00", "end": "20:00"}
ONE_STEP = [{"delay": "PT1H", "template": "abandoned_checkout/1"}]


async def test_send_window_in_the_leads_zone_across_the_dst_change(
    client, account, clock, dispatcher, smtp_sink, db
):
    # Saturday 2026-03-28 19:30 in Berlin (CET, UTC+1); clocks go forward that night.
    clock.set(dt.datetime(2026, 3, 28, 18, 30, tzinfo=UTC))
    await create_campaign(client, account, steps=ONE_STEP, send_window=WINDOW, status="active")
    await ingest(client, account, clock, event_now(clock, timezone="Europe/Berlin"))

    clock.set(dt.datetime(2026, 3, 28, 19, 30, tzinfo=UTC))  # due: 20:30 local, outside
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.rescheduled == 1, report
    # Sunday 09:00 CEST (UTC+2) = 07:00 UTC, not 08:00 UTC (which 09:00 CET would be).
    opening = dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert (await enrollment(db)).next_due_at == opening

    clock.set(opening - dt.timedelta(minutes=1))
    assert (await dispatcher.run_once()).claimed == 0
    assert smtp_sink.messages == []
    clock.set(opening)
    assert (await dispatcher.run_once()).sent == 1
    (row,) = await messages(db)
    assert row.sent_at == opening
    assert len(smtp_sink.messages) == 1
    clock.set(dt.datetime(2026, 3, 29, 8, 0, tzinfo=UTC))
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1


async def test_send_window_across_the_autumn_dst_change(
    client, account, clock, dispatcher, smtp_sink, db
):
    # Saturday 2026-10-24 19:30 CEST (UTC+2); Sunday is on CET (UTC+1).
    clock.set(dt.datetime(2026, 10, 24, 17, 30, tzinfo=UTC))
    await create_campaign(client, account, steps=ONE_STEP, send_window=WINDOW, status="active")
    await ingest(client, account, clock, event_now(clock, timezone="Europe/Berlin"))
    clock.advance(hours=1)
    assert (await dispatcher.run_once()).rescheduled == 1
    opening = dt.datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert (await enrollment(db)).next_due_at == opening
    clock.set(opening - dt.timedelta(hours=1))  # 09:00 on the summer-time offset: too early
    assert (await dispatcher.run_once()).claimed == 0
    clock.set(opening)
    assert (await dispatcher.run_once()).sent == 1


async def test_send_window_uses_account_timezone_when_the_event_has_none(
    client, account, clock, dispatcher, smtp_sink, db
):
    await put_settings(client, account, timezone="America/New_York")
    # 2026-01-15 23:30 UTC = 18:30 in New York (EST, UTC-5); due 19:30 local: inside.
    clock.set(dt.datetime(2026, 1, 15, 23, 30, tzinfo=UTC))
    await create_campaign(client, account, steps=ONE_STEP, send_window=WINDOW, status="active")
    await ingest(client, account, clock, event_now(clock, timezone=None, reference="chk_ny"))
    clock.advance(hours=1)
    assert (await dispatcher.run_once()).sent == 1

    # Another lead at 20:00 local: due 21:00 local (02:00 UTC), deferred to 09:00 EST = 14:00 UTC.
    clock.set(dt.datetime(2026, 1, 16, 1, 0, tzinfo=UTC))
    await ingest(
        client,
        account,
        clock,
        event_now(clock, timezone=None, reference="chk_ny2", email="b@example.com"),
    )
    clock.advance(hours=1)
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.rescheduled == 1
    opening = dt.datetime(2026, 1, 16, 14, 0, tzinfo=UTC)
    clock.set(opening - dt.timedelta(seconds=1))
    assert (await dispatcher.run_once()).claimed == 0
    # In UTC (the lead has no zone) 13:59 would already be inside 09:00-20:00.
    assert len(smtp_sink.messages) == 1
    clock.set(opening)
    assert (await dispatcher.run_once()).sent == 1
    assert recipients(smtp_sink.messages) == ["jane@example.com", "b@example.com"]
    later = next(m for m in await messages(db) if m.to_email == "b@example.com")
    assert later.sent_at == opening


async def test_send_window_spanning_midnight(client, account, clock, dispatcher, smtp_sink, db):
    # 22:00-06:00 local Berlin; the lead is captured at 10:00 local (09:00 UTC).
    clock.set(dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC))
    window = {"start": "22:00", "end": "06:00"}
    await create_campaign(client, account, steps=ONE_STEP, send_window=window, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=1)
    assert (await dispatcher.run_once()).rescheduled == 1
    assert (await enrollment(db)).next_due_at == dt.datetime(2026, 1, 15, 21, 0, tzinfo=UTC)
    clock.set(dt.datetime(2026, 1, 15, 21, 0, tzinfo=UTC))
    assert (await dispatcher.run_once()).sent == 1


async def _two_campaigns(client, account) -> None:
    # Trial leads normally wait a day; lower it so both campaigns come due the same day.
    await put_settings(client, account, min_delays={"trial": "PT1H"})
    await create_campaign(client, account, name="Cart recovery", steps=ONE_STEP, status="active")
    await create_campaign(
        client,
        account,
        name="Trial nurture",
        source="trial",
        steps=[{"delay": "PT2H", "template": "trial/1"}],
        status="active",
    )


async def test_frequency_cap_across_campaigns(client, account, clock, dispatcher, smtp_sink, db):
    await _two_campaigns(client, account)
    start = clock.now()
    await ingest(client, account, clock, event_now(clock, reference="chk_cap"))
    await ingest(
        client, account, clock, event_now(clock, reference="trial_cap", type="trial.started")
    )
    assert {e.campaign_id for e in await enrollments(db)}.__len__() == 2

    clock.advance(hours=1)
    assert (await dispatcher.run_once()).sent == 1  # the cart follow-up
    first_at = clock.now()
    clock.advance(hours=1)  # the trial follow-up is due, but only 1h after the first email
    report = await dispatcher.run_once()
    assert report.sent == 0 and report.rescheduled == 1, report
    assert len(smtp_sink.messages) == 1

    # min_hours_between_emails defaults to 12h.
    allowed = first_at + dt.timedelta(hours=12)
    clock.set(allowed - dt.timedelta(minutes=1))
    assert (await dispatcher.run_once()).sent == 0
    clock.set(allowed)
    assert (await dispatcher.run_once()).sent == 1
    assert (await dispatcher.run_once()).claimed == 0
    assert recipients(smtp_sink.messages) == ["jane@example.com", "jane@example.com"]
    rows = await messages(db)
    assert [r.sent_at for r in rows] == [first_at, allowed]
    assert rows[0].campaign_id != rows[1].campaign_id
    assert start < first_at


async def test_frequency_cap_when_both_come_due_in_the_same_tick(
    client, account, clock, dispatcher, smtp_sink, db
):
    await _two_campaigns(client, account)
    await ingest(client, account, clock, event_now(clock, reference="chk_cap"))
    await ingest(
        client, account, clock, event_now(clock, reference="trial_cap", type="trial.started")
    )
    clock.advance(hours=3)  # both due now: only one may go out
    report = await dispatcher.run_once()
    assert report.claimed == 2
    assert report.sent == 1, report
    assert len(smtp_sink.messages) == 1
    first_at = clock.now()
    sent = await messages(db, Message.status == "sent")
    assert len(sent) == 1

    clock.set(first_at + dt.timedelta(hours=12) - dt.timedelta(seconds=1))
    assert (await dispatcher.run_once()).sent == 0
    clock.set(first_at + dt.timedelta(hours=12))
    assert (await dispatcher.run_once()).sent == 1
    assert len(smtp_sink.messages) == 2
    assert (await dispatcher.run_once()).claimed == 0


@pytest.mark.parametrize("hours", [0, 2])
async def test_the_merchant_sets_the_frequency_cap(
    client, account, clock, dispatcher, smtp_sink, db, hours
):
    """``min_hours_between_emails`` in the settings: 0 turns the cap off."""
    await _two_campaigns(client, account)
    await put_settings(client, account, min_hours_between_emails=hours)
    await ingest(client, account, clock, event_now(clock, reference="chk_cap"))
    await ingest(
        client, account, clock, event_now(clock, reference="trial_cap", type="trial.started")
    )
    clock.advance(hours=3)  # both due now
    first_at = clock.now()
    assert (await dispatcher.run_once()).sent == (2 if hours == 0 else 1)
    if hours:
        clock.set(first_at + dt.timedelta(hours=hours) - dt.timedelta(seconds=1))
        assert (await dispatcher.run_once()).sent == 0
        clock.set(first_at + dt.timedelta(hours=hours))
        assert (await dispatcher.run_once()).sent == 1
    assert recipients(smtp_sink.messages) == ["jane@example.com", "jane@example.com"]
