"""A follow-up the merchant's configuration makes impossible fails once, visibly, for good."""

from __future__ import annotations

from sqlalchemy import update

from leadflow.models.accounts import Account
from tests.dispatch.helpers import THREE_STEPS, enrollment, event_now, messages
from tests.support.campaigns import create_campaign
from tests.support.events import ingest


async def test_a_sender_that_cannot_be_a_header_fails_the_follow_up_once(
    client, account, clock, dispatcher, smtp_sink, db
):
    # Stored before line breaks were refused in the settings: it cannot become a From header.
    async with db.session() as session:
        await session.execute(
            update(Account)
            .where(Account.id == account["id"])
            .values(sender_name="Acme\r\nBcc: victim@example.com")
        )
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)

    report = await dispatcher.run_once()
    assert report.failed == 1 and report.sent == 0 and not report.errors, report
    (row,) = await messages(db)
    assert row.status == "failed" and "invalid sender" in row.last_error
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "invalid_sender"
    assert enr.lease_token is None
    clock.advance(hours=48)
    assert (await dispatcher.run_once()).claimed == 0  # not retried every tick
    assert smtp_sink.messages == []
