"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from leadflow.config import Settings
from leadflow.dispatch.dispatcher import Dispatcher
from leadflow.dispatch.mail import SmtpTransport
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SinkHandler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.reply: str | None = None  # e.g. "451 4.3.0 try later" or "550 5.1.1 no such user"
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply is not None:
            return self.reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.envelopes.append(envelope)
            self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


class SmtpSink:
    """Start, stop (server down) and restart on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = SinkHandler()
        self.controller: Controller | None = None
        self.connections = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=false"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def smtp_url(settings: Settings) -> str:
    assert settings.smtp_url is not None
    return settings.smtp_url.get_secret_value()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def mail_settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return settings.model_copy(update={"smtp_url": SecretStr(smtp_sink.url)})


@pytest.fixture
async def dispatcher(
    mail_settings: Settings, db: Database, clock: ManualClock
) -> AsyncIterator[Dispatcher]:
    transport = SmtpTransport(smtp_url(mail_settings), pool_size=4, timeout=5)
    yield Dispatcher(mail_settings, db, clock, transport)
    await transport.close()
