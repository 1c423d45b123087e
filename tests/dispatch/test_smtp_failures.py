"""A real SMTP server that is down, says "try later" (4xx) or refuses for good (5xx)."""

from __future__ import annotations

import datetime as dt

from leadflow.kit.mail import SmtpTransport
from leadflow.lifecycle.dispatcher import Dispatcher
from tests.dispatch.helpers import THREE_STEPS, enrollment, event_now, messages
from tests.support.campaigns import create_campaign
from tests.support.events import ingest
from tests.support.servers import smtp_url

BACKOFF = dt.timedelta(seconds=30)  # settings.smtp_retry_base_seconds


async def _due_lead(client, account, clock) -> None:
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)


async def test_server_down_then_back_delivers_exactly_once(
    client, account, clock, dispatcher, smtp_sink, db
):
    assert dispatcher.settings.smtp_retry_base_seconds == BACKOFF.total_seconds()
    await _due_lead(client, account, clock)
    smtp_sink.stop()

    report = await dispatcher.run_once()
    assert report.retried == 1 and report.sent == 0 and report.failed == 0, report
    (row,) = await messages(db)
    assert row.status == "deferred" and row.attempts == 1 and "connect" in row.last_error
    enr = await enrollment(db)
    assert enr.state == "active" and enr.attempts == 1 and enr.next_step == 1
    assert enr.next_due_at == clock.now() + BACKOFF
    assert (await dispatcher.run_once()).claimed == 0  # backing off

    clock.advance(BACKOFF)
    report = await dispatcher.run_once()
    assert report.retried == 1, report  # still down: the backoff doubles
    assert (await enrollment(db)).next_due_at == clock.now() + 2 * BACKOFF

    smtp_sink.start()
    clock.advance(2 * BACKOFF - dt.timedelta(seconds=1))
    assert (await dispatcher.run_once()).claimed == 0
    clock.advance(seconds=1)
    report = await dispatcher.run_once()
    assert report.sent == 1, report
    (received,) = smtp_sink.messages
    (row,) = await messages(db)
    assert row.status == "sent" and row.attempts == 3 and row.last_error is None
    assert received["Message-ID"] == row.message_id_header
    enr = await enrollment(db)
    assert enr.next_step == 2 and enr.attempts == 0
    assert enr.next_due_at == clock.now() + dt.timedelta(days=1)
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1


async def test_server_restarted_between_steps_drops_pooled_connection(
    client, account, clock, dispatcher, smtp_sink, db
):
    await _due_lead(client, account, clock)
    assert (await dispatcher.run_once()).sent == 1
    smtp_sink.stop()  # the pooled connection from step 1 is now dead
    clock.advance(days=1)
    assert (await dispatcher.run_once()).retried == 1
    smtp_sink.start()
    clock.advance(BACKOFF)
    assert (await dispatcher.run_once()).sent == 1
    assert [m["Subject"] for m in smtp_sink.messages][1] != smtp_sink.messages[0]["Subject"]
    assert [(m.step, m.status) for m in await messages(db)] == [(1, "sent"), (2, "sent")]


async def test_451_then_ok_gives_one_message(client, account, clock, dispatcher, smtp_sink, db):
    await _due_lead(client, account, clock)
    smtp_sink.handler.reply = "451 4.3.0 Try again later"
    report = await dispatcher.run_once()
    assert report.retried == 1 and report.sent == 0, report
    (row,) = await messages(db)
    assert row.status == "deferred" and row.last_error.startswith("451")
    assert smtp_sink.messages == []

    smtp_sink.handler.reply = None
    clock.advance(BACKOFF)
    assert (await dispatcher.run_once()).sent == 1
    (received,) = smtp_sink.messages
    (row,) = await messages(db)
    assert row.status == "sent" and row.attempts == 2
    assert received["Message-ID"] == row.message_id_header
    clock.advance(hours=1)
    assert (await dispatcher.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1


async def test_550_fails_for_good_without_retry(client, account, clock, dispatcher, smtp_sink, db):
    await _due_lead(client, account, clock)
    smtp_sink.handler.reply = "550 5.1.1 No such user"
    report = await dispatcher.run_once()
    assert report.failed == 1 and report.retried == 0 and report.sent == 0, report
    (row,) = await messages(db)
    assert row.status == "failed" and row.last_error.startswith("550")
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "smtp_rejected"

    smtp_sink.handler.reply = None
    for _ in range(3):
        clock.advance(days=1)
        assert (await dispatcher.run_once()).claimed == 0
    assert smtp_sink.messages == []
    assert len(await messages(db)) == 1


async def test_gives_up_after_max_attempts(client, account, clock, mail_settings, smtp_sink, db):
    settings = mail_settings.model_copy(update={"smtp_max_attempts": 3})
    transport = SmtpTransport(smtp_url(settings), pool_size=2, timeout=5)
    dispatcher = Dispatcher(settings, db, clock, transport)
    try:
        await _due_lead(client, account, clock)
        smtp_sink.handler.reply = "452 4.3.1 Insufficient system storage"
        outcomes = []
        for _ in range(3):
            report = await dispatcher.run_once()
            outcomes.append((report.retried, report.failed))
            clock.advance(hours=1)
        assert outcomes == [(1, 0), (1, 0), (0, 1)]
        (row,) = await messages(db)
        assert row.status == "failed" and row.attempts == 3
        enr = await enrollment(db)
        assert enr.state == "stopped" and enr.stop_reason == "smtp_unavailable"
        smtp_sink.handler.reply = None
        clock.advance(days=1)
        assert (await dispatcher.run_once()).claimed == 0
        assert smtp_sink.messages == []
    finally:
        await transport.close()
