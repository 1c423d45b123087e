"""The account's minimum delay applies at send time, in both directions."""

from __future__ import annotations

import datetime as dt

from tests.dispatch.helpers import event_now
from tests.support.api import put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

STEP = [{"delay": "PT1H", "template": "abandoned_checkout/1"}]


async def test_lowering_the_minimum_brings_waiting_first_steps_forward(
    client, account, clock, dispatcher, smtp_sink
):
    await create_campaign(client, account, steps=STEP, status="active")
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT6H"})
    await ingest(client, account, clock, event_now(clock, timezone=None))

    clock.advance(dt.timedelta(hours=2))
    await dispatcher.run_once()
    assert smtp_sink.messages == []  # the six-hour minimum still holds

    await put_settings(client, account, min_delays={"abandoned_checkout": "PT1H"})
    report = await dispatcher.run_once()
    assert report.sent == 1
    assert len(smtp_sink.messages) == 1


async def test_raising_the_minimum_holds_back_waiting_first_steps(
    client, account, clock, dispatcher, smtp_sink
):
    await create_campaign(client, account, steps=STEP, status="active")
    await ingest(client, account, clock, event_now(clock, timezone=None))
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT5H"})

    clock.advance(dt.timedelta(hours=2))
    await dispatcher.run_once()
    assert smtp_sink.messages == []
    clock.advance(dt.timedelta(hours=3))
    await dispatcher.run_once()
    assert len(smtp_sink.messages) == 1
