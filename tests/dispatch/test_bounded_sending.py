"""Merchant templates render within the limits at send time too: one stored before the limits
existed fails its follow-up once, visibly, and is never retried; a normal one still goes out."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

from sqlalchemy import select, update

from leadflow.kit.ids import new_id
from leadflow.models.campaigns import Variant
from leadflow.models.notifications import IlnDelivery, IlnEndpoint
from tests.campaigns.test_bounded_rendering import HOSTILE
from tests.dispatch.helpers import enrollment, event_now, links, messages, text_part
from tests.support.campaigns import create_campaign, custom_step
from tests.support.events import ingest


async def _stored_hostile(client, account, db, part: str, source: str) -> None:
    """An active campaign whose one custom step has ``source`` in ``part``, written to the
    database directly, as saving checked nothing before the limits existed."""
    created = await create_campaign(client, account, steps=[custom_step()], status="active")
    stored = {**custom_step(), "delay_seconds": 7200, "template": None, "discount_code": None}
    del stored["delay"]
    stored[part] = source
    async with db.session() as session:
        await session.execute(
            update(Variant).where(Variant.campaign_id == created["id"]).values(steps=[stored])
        )
    async with db.session() as session:  # a notification endpoint for followup.failed
        session.add(
            IlnEndpoint(
                id=new_id("ep"),
                account_id=account["id"],
                url="https://hooks.example.com/leadflow",
                event_types=["followup.failed"],
                enabled=True,
                secret="whsec_test",
                created_at=dt.datetime.now(dt.UTC),
                updated_at=dt.datetime.now(dt.UTC),
            )
        )


async def _failed_notifications(db) -> list[IlnDelivery]:
    async with db.session() as session:
        found = await session.execute(
            select(IlnDelivery).where(IlnDelivery.event_type == "followup.failed")
        )
        return list(found.scalars())


async def test_a_stored_hostile_template_fails_its_follow_up_at_send_time(
    client, account, clock, dispatcher, smtp_sink, db
):
    await _stored_hostile(client, account, db, "html", HOSTILE["nested ranges"])
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)

    started = time.monotonic()
    report = await dispatcher.run_once()
    assert time.monotonic() - started < 5  # stopped by the limits, not run to the end
    assert report.failed == 1 and report.sent == 0 and not report.errors, report
    (row,) = await messages(db)
    assert row.status == "failed", row.status
    assert row.last_error.startswith("template error in the html: "), row.last_error
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "template_error"
    assert enr.lease_token is None
    (notified,) = await _failed_notifications(db)
    assert notified.payload["data"]["error"] == row.last_error, notified.payload

    clock.advance(hours=48)
    assert (await dispatcher.run_once()).claimed == 0  # never retried
    assert smtp_sink.messages == []
    assert len(await _failed_notifications(db)) == 1


async def test_a_stored_padding_filter_in_the_subject_is_named(
    client, account, clock, dispatcher, smtp_sink, db
):
    await _stored_hostile(client, account, db, "subject", HOSTILE["padding filter"])
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    report = await dispatcher.run_once()
    assert report.failed == 1 and report.sent == 0, report
    (row,) = await messages(db)
    assert row.status == "failed"
    assert row.last_error.startswith("template error in the subject: "), row.last_error
    assert smtp_sink.messages == []


async def test_custom_templates_in_a_batch_render_and_send(
    client, account, clock, dispatcher, smtp_sink, db
):
    step = custom_step(
        subject="Still thinking it over, {{ first_name }}?",
        text="Hi {{ first_name }}, your cart is waiting.\n{{ recovery_url }}",
    )
    await create_campaign(client, account, steps=[step], status="active")
    names = ["Ann", "Bob", "Cleo", "Dan", "Eve"]
    for n, name in enumerate(names):
        await ingest(
            client,
            account,
            clock,
            event_now(clock, email=f"l{n}@example.com", reference=f"chk_{n}", first_name=name),
        )
    clock.advance(hours=2)

    report = await dispatcher.run_once()
    assert report.sent == len(names) and report.failed == 0 and not report.errors, report
    got = {str(m["To"]): m for m in smtp_sink.messages}
    assert sorted(got) == sorted(f"l{n}@example.com" for n in range(len(names)))
    for n, name in enumerate(names):
        sent = got[f"l{n}@example.com"]
        assert sent["Subject"] == f"Still thinking it over, {name}?"
        assert f"Hi {name}, your cart is waiting." in text_part(sent)
    rows = await messages(db)
    assert {row.status for row in rows} == {"sent"}
    for row in rows:  # the tracked link carries the id of the message recorded for it
        (link,) = links(text_part(got[row.to_email]), "c")
        payload = link.rsplit("/", 1)[1].split(".")[0]
        assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[1] == (
            row.id
        )
