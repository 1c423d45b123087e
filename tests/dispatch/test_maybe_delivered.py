"""The SMTP connection breaks after DATA began, with no reply: the server may have the
message, so it is settled ``unknown`` and never sent again (a retry could deliver it twice)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from leadflow.kit.mail import SmtpTransport, TransientMailError
from leadflow.lifecycle.dispatcher import Dispatcher
from tests.dispatch.helpers import enrollment, event_now, messages
from tests.support.api import put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest

STEPS = [
    {"delay": "PT0S", "template": "abandoned_checkout/1"},
    {"delay": "P1D", "template": "abandoned_checkout/2"},
]


class DroppingServer:
    """A minimal SMTP server on loopback that reads a whole message after DATA and then
    drops the connection without answering (``drop_after_data``), or answers 250; with
    ``drop_at_rcpt`` it drops the connection at RCPT TO instead, before any DATA."""

    def __init__(self) -> None:
        self.received = 0
        self.drop_after_data = True
        self.drop_at_rcpt = False
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 drop.example ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250 drop.example\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    await reader.readuntil(b"\r\n.\r\n")
                    self.received += 1
                    if self.drop_after_data:
                        return  # the message is here; the client never hears so
                    writer.write(b"250 queued\r\n")
                elif verb == b"RCPT" and self.drop_at_rcpt:
                    return
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    return
                else:  # MAIL, RCPT, RSET, NOOP
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def dropping() -> AsyncIterator[DroppingServer]:
    server = DroppingServer()
    await server.start()
    yield server
    await server.stop()


async def test_a_connection_lost_after_data_is_unknown_and_never_resent(
    client, account, clock, db, mail_settings, dropping
):
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"})
    await create_campaign(client, account, steps=STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))
    transport = SmtpTransport(
        f"smtp://127.0.0.1:{dropping.port}?starttls=false", pool_size=1, timeout=5
    )
    dispatcher = Dispatcher(mail_settings, db, clock, transport)
    try:
        first = await dispatcher.run_once()
        assert first.sent == 0 and first.errors, first  # no reply: not known to be sent
        assert dropping.received == 1
        (row,) = await messages(db)
        assert row.status == "sending" and row.data_started_at is not None

        dropping.drop_after_data = False  # a retry now would get through: none must happen
        await dispatcher.run_until_idle()
        assert dropping.received == 1  # never sent again
        (row,) = await messages(db)
        assert row.status == "unknown"
        enr = await enrollment(db)
        assert enr.next_step == 2 and enr.state == "active"  # the sequence continues
    finally:
        await transport.close()


async def test_a_connection_lost_before_data_is_transient(dropping):
    """Without DATA nothing was handed over: that failure stays transient (retried)."""
    dropping.drop_at_rcpt = True
    transport = SmtpTransport(f"smtp://127.0.0.1:{dropping.port}?starttls=false", timeout=2)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "x"
    message.set_content("x")
    try:
        with pytest.raises(TransientMailError):
            await transport.send(message)
    finally:
        await transport.close()
    assert dropping.received == 0
