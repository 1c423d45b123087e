"""Bounces and complaints that come back by mail, through the SMTP listener of
``leadflow bounces`` on loopback: a DSN (RFC 3464) and an ARF report (RFC 5965) about a
follow-up that really went out through the SMTP sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import pytest

from leadflow.integrations.returns_listener import start_returns_listener
from tests.bounces.helpers import Written, message_rows, suppressions, written
from tests.dispatch.helpers import THREE_STEPS, enrollment, event_now
from tests.notifications.helpers import add_endpoint
from tests.support.campaigns import create_campaign
from tests.support.events import ingest
from tests.support.servers import free_port

EMAIL = "jane@example.com"


@pytest.fixture
async def listener(db, settings, clock) -> AsyncIterator[int]:
    port = free_port()
    server = await start_returns_listener(db, settings, clock, "127.0.0.1", port)
    yield port
    server.close()
    await server.wait_closed()


def _headers(original: EmailMessage) -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in original.items())


def _report(
    kind: str, headers: dict[str, str], text: str, block: str, original: EmailMessage
) -> bytes:
    """A multipart/report as receiving servers write it (RFC 6522)."""
    boundary = "=_report_boundary_42"
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    body = (
        f"{head}MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={kind}; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"{text}\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/{kind}\r\n\r\n"
        f"{block}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{_headers(original)}\r\n"
        f"--{boundary}--\r\n"
    )
    return body.encode()


def dsn(original: EmailMessage, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    block = (
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Arrival-Date: Thu, 15 Jan 2026 14:29:58 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {EMAIL}\r\n"
        f"Original-Recipient: rfc822;{EMAIL}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Remote-MTA: dns; mail.example.com\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{EMAIL}>: Recipient address rejected\r\n"
    )
    headers = {
        "From": "MAILER-DAEMON@mx.example.com",
        "To": "bounces@shop.example.com",
        "Subject": "Undelivered Mail Returned to Sender",
        "Message-ID": f"<dsn.{action}@mx.example.com>",
        "Date": "Thu, 15 Jan 2026 14:30:00 +0000",
    }
    return _report(
        "delivery-status", headers, "Your message could not be delivered.", block, original
    )


def arf(original: EmailMessage) -> bytes:
    block = (
        "Feedback-Type: abuse\r\n"
        "User-Agent: SomeGenerator/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Rcpt-To: {EMAIL}\r\n"
        "Arrival-Date: Thu, 15 Jan 2026 14:00:00 +0000\r\n"
    )
    headers = {
        "From": "abuse@mailbox.example.net",
        "To": "abuse@shop.example.com",
        "Subject": "FW: abuse report",
        "Message-ID": "<arf.1@mailbox.example.net>",
        "Date": "Thu, 15 Jan 2026 15:00:00 +0000",
    }
    return _report("feedback-report", headers, "This is an email abuse report.", block, original)


async def _send(port: int, raw: bytes) -> None:
    """Delivered as a DSN is: with the null reverse path (``MAIL FROM:<>``)."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as smtp:
        errors, _ = await smtp.sendmail("", ["bounces@leadflow.example.com"], raw)
        assert errors == {}


async def _sent(client, account, clock, dispatcher, smtp_sink) -> EmailMessage:
    await create_campaign(client, account, steps=THREE_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    clock.advance(hours=2)
    assert (await dispatcher.run_once()).sent == 1
    return smtp_sink.messages[0]


async def test_a_dsn_suppresses_and_notifies(
    client, account, clock, dispatcher, smtp_sink, db, listener, notifier, receiver
):
    await add_endpoint(client, account, receiver, event_types=["lead.bounced"])
    original = await _sent(client, account, clock, dispatcher, smtp_sink)

    # A delay notice is not a bounce.
    await _send(listener, dsn(original, action="delayed", status="4.4.7"))
    assert (await written(db)).outcomes == 0

    await _send(listener, dsn(original))
    (suppression,) = await suppressions(db)
    assert (suppression.email, suppression.reason) == (EMAIL, "bounced")
    assert (await enrollment(db)).stop_reason == "suppressed"
    (message,) = await message_rows(db)
    assert message.bounce == "hard_bounce"
    await notifier.run_once()
    (notification,) = receiver.posts
    assert notification.json["type"] == "lead.bounced"
    assert notification.json["data"]["provider"] == "smtp"
    assert notification.json["data"]["message_id"] == message.id

    before = await written(db)
    await _send(listener, dsn(original))  # the same report again
    assert await written(db) == before


async def test_an_arf_report_is_a_complaint(
    client, account, clock, dispatcher, smtp_sink, db, listener
):
    original = await _sent(client, account, clock, dispatcher, smtp_sink)
    await _send(listener, arf(original))
    (suppression,) = await suppressions(db)
    assert suppression.reason == "complaint"
    (message,) = await message_rows(db)
    assert message.bounce == "complaint"


async def test_other_mail_changes_nothing(
    client, account, clock, dispatcher, smtp_sink, db, listener
):
    original = await _sent(client, account, clock, dispatcher, smtp_sink)
    reply = EmailMessage()
    reply["From"] = EMAIL
    reply["To"] = "bounces@leadflow.example.com"
    reply["Subject"] = "Out of office"
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply.set_content("I am away until Monday.")
    await _send(listener, reply.as_bytes())
    # A DSN about a message that is not ours.
    foreign = EmailMessage()
    foreign["Message-ID"] = "<not-ours@elsewhere.example>"
    foreign["To"] = EMAIL
    await _send(listener, dsn(foreign))
    assert await written(db) == Written(outcomes=0, suppressions=0, notifications=0, stopped=0)
