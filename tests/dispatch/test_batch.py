"""A tick decides and records its whole batch at once, sends it over the pool, then records
the outcomes together: still every follow-up once, and nothing half-done at shutdown."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy

import pytest

from leadflow.kit.mail import SmtpTransport, wire_email
from leadflow.lifecycle.dispatcher import Dispatcher
from leadflow.templates.compose import build_email
from leadflow.templates.render import Rendered, render_step, sample_context
from leadflow.templates.wire import build_wire_email
from tests.dispatch.helpers import GatedTransport, enrollments, event_now, messages, recipients
from tests.support.api import put_settings
from tests.support.campaigns import create_campaign, custom_step
from tests.support.events import ingest
from tests.support.servers import smtp_url

LEADS = 5


async def test_stop_mid_batch_sends_what_is_in_flight_and_gives_back_the_rest(
    client, account, clock, mail_settings, smtp_sink, db
):
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"})
    await create_campaign(client, account, steps=[custom_step(delay="PT0S")], status="active")
    for i in range(LEADS):
        await ingest(
            client, account, clock, event_now(clock, email=f"s{i}@example.com", reference=f"c{i}")
        )
    settings = mail_settings.model_copy(update={"smtp_pool_size": 1})
    transport = SmtpTransport(smtp_url(settings), pool_size=1, timeout=5)
    gated = GatedTransport(transport)
    worker = Dispatcher(settings, db, clock, gated)
    try:
        tick = asyncio.create_task(worker.run_once())
        await asyncio.wait_for(gated.entered.wait(), 10)
        # The whole batch was recorded before the first send.
        assert [m.status for m in await messages(db)] == ["sending"] * LEADS
        worker.stop()  # a deploy: the send in flight finishes, the others are given back
        gated.release.set()
        report = await asyncio.wait_for(tick, 10)
    finally:
        await transport.close()
    assert report.claimed == LEADS and report.sent == 1 and report.released == LEADS - 1, report
    (row,) = await messages(db)
    assert row.status == "sent"
    assert all(e.lease_token is None for e in await enrollments(db))
    assert len(smtp_sink.messages) == 1

    other = Dispatcher(mail_settings, db, clock, SmtpTransport(smtp_url(mail_settings)))
    try:
        report = await other.run_until_idle()
    finally:
        await other.transport.close()
    assert report.sent == LEADS - 1
    assert sorted(recipients(smtp_sink.messages)) == [f"s{i}@example.com" for i in range(LEADS)]
    assert [m.status for m in await messages(db)] == ["sent"] * LEADS


async def test_a_batch_of_many_is_sent_once_each_with_its_own_links(
    client, account, clock, dispatcher, smtp_sink, db
):
    await put_settings(
        client, account, min_delays={"abandoned_checkout": "PT0S"}, sender_name="Bäckerei Müller"
    )
    steps = [
        {"delay": "PT0S", "template": "abandoned_checkout/1"},
        {"delay": "P1D", "template": "abandoned_checkout/2"},
    ]
    await create_campaign(client, account, steps=steps, status="active")
    for i in range(30):
        await ingest(
            client, account, clock, event_now(clock, email=f"b{i}@example.com", reference=f"b{i}")
        )
    report = await dispatcher.run_once()
    assert report.claimed == 30 and report.sent == 30, report
    sent = smtp_sink.messages
    assert sorted(recipients(sent)) == sorted(f"b{i}@example.com" for i in range(30))
    rows = {m.id: m for m in await messages(db)}
    assert len(rows) == 30 and {m.status for m in rows.values()} == {"sent"}
    for received in sent:
        assert received["From"].addresses[0].display_name == "Bäckerei Müller"
        row = next(m for m in rows.values() if m.to_email == str(received["To"]))
        assert received["Subject"] == row.subject and row.subject
        assert str(received["Message-ID"]) == row.message_id_header
        assert row.message_id_header.startswith(f"<{row.id}@")
    assert len({str(m["List-Unsubscribe"]) for m in sent}) == 30
    assert all(e.next_step == 2 and e.lease_token is None for e in await enrollments(db))
    clock.advance(days=1)
    assert (await dispatcher.run_once()).sent == 30
    assert len(smtp_sink.messages) == 60


def _parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    assert message.defects == [] and all(part.defects == [] for part in message.walk())
    return message


def _body(message: email.message.EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize(
    "rendered",
    [
        render_step({"template": "abandoned_checkout/1"}, sample_context(), "de"),
        render_step({"template": "abandoned_checkout/3"}, sample_context(), "en"),
        Rendered(
            subject="Jürgen, " + "your cart is still waiting " * 5 + "€",
            html="<p>€ 49 = 49 €</p>\n. \nFrom here  \n" + "<b>long</b>" * 40,
            text="trailing  \n\n.dot\nno newline at the end",
        ),
        Rendered(subject="=?utf-8?q?not_decoded?= a = b", html="", text="\t"),
    ],
    ids=["de", "en", "awkward", "empty"],
)
def test_wire_email_reads_as_the_email_package_writes_it(rendered):
    parts = {
        "rendered": rendered,
        "from_header": '"Shöp, Inc." <shop@example.com>',
        "to": "jane@example.com",
        "message_id": "msg_1",
        "list_unsubscribe": "https://leadflow.example.com/u/" + "t" * 140,
        "now": dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
    }
    expected = _parsed(build_email(**parts).as_bytes(policy=email.policy.SMTP))
    wire = build_wire_email(**parts)
    got = _parsed(wire.data)
    names = ["From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"]
    names += ["List-Unsubscribe-Post", "MIME-Version"]
    for name in names:
        assert str(got[name]) == str(expected[name]), name
    assert got.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        assert _body(got, kind) == _body(expected, kind)
    assert wire.mail_from == "shop@example.com" and wire.rcpt_to == ("jane@example.com",)
    assert wire["message-id"] == "<msg_1@example.com>"
    assert all(len(line) <= 998 for line in wire.data.split(b"\r\n"))


@pytest.mark.parametrize(
    "headers",
    [
        [("From", "shop@example.com"), ("To", "jürgen@example.com")],
        [("From", "shop@example.com"), ("To", "a@example.com"), ("Subject", "a\nBcc: b")],
        [("From", "shop@example.com")],
    ],
    ids=["address outside ASCII", "two lines", "no recipient"],
)
def test_wire_email_refuses_what_it_cannot_write(headers):
    with pytest.raises(ValueError):
        wire_email(headers, text="x", html="<p>x</p>")


async def test_a_batch_that_fails_to_record_falls_back_to_one_at_a_time(
    client, account, clock, dispatcher, smtp_sink, db, monkeypatch
):
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"})
    await create_campaign(client, account, steps=[custom_step(delay="PT0S")], status="active")
    for i in range(3):
        await ingest(
            client, account, clock, event_now(clock, email=f"f{i}@example.com", reference=f"f{i}")
        )

    async def broken(*args: object) -> bool:
        raise RuntimeError("connection lost mid-batch")

    monkeypatch.setattr("leadflow.lifecycle.dispatcher.lock_keys", broken)
    report = await dispatcher.run_once()
    assert report.claimed == 3 and report.sent == 3 and report.errors == [], report
    assert sorted(recipients(smtp_sink.messages)) == [f"f{i}@example.com" for i in range(3)]
    assert [m.status for m in await messages(db)] == ["sent"] * 3
    assert (await dispatcher.run_once()).claimed == 0


async def test_batches_overlap_and_still_send_each_follow_up_once(
    client, account, clock, mail_settings, smtp_sink, db, backend
):
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"})
    await create_campaign(client, account, steps=[custom_step(delay="PT0S")], status="active")
    for i in range(23):
        await ingest(
            client, account, clock, event_now(clock, email=f"o{i}@example.com", reference=f"o{i}")
        )
    settings = mail_settings.model_copy(update={"dispatch_batch_size": 4})
    workers = 2 if backend == "postgresql" else 1  # SQLite: one writer, one worker
    transports = [SmtpTransport(smtp_url(settings), pool_size=2) for _ in range(workers)]
    try:
        runs = [Dispatcher(settings, db, clock, t).run_while_due() for t in transports]
        reports = await asyncio.gather(*runs)
    finally:
        for transport in transports:
            await transport.close()
    assert sum(r.sent for r in reports) == 23 and all(r.errors == [] for r in reports), reports
    assert sorted(recipients(smtp_sink.messages)) == sorted(f"o{i}@example.com" for i in range(23))
    rows = await messages(db)
    assert len(rows) == 23 and {m.status for m in rows} == {"sent"}
    assert all(e.next_step == 2 and e.lease_token is None for e in await enrollments(db))
