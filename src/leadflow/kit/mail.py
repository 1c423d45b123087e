"""Mail transports: SMTP (pooled, aiosmtplib) or ``.eml`` files for a fresh machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from leadflow.config import Settings


class TransientMailError(Exception):
    """Not delivered, worth retrying (4xx replies, connection problems)."""


class PermanentMailError(Exception):
    """Refused for good (5xx replies): retrying would not help."""


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


class FileTransport:
    """Writes each message to ``<outbox>/<message id>.eml`` (the default without SMTP)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("/", "_") + ".eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(tmp, self.directory / name)

    async def close(self) -> None:
        return None


class SmtpOptions:
    """Parsed ``smtp://user:pass@host:port?starttls=auto|true|false&verify=true`` or ``smtps://``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("LEADFLOW_SMTP_URL must start with smtp:// or smtps://")
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        self.hostname = parts.hostname or "localhost"
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        starttls = query.get("starttls", "auto")
        self.start_tls: bool | None = starttls in ("1", "true", "yes")
        if starttls == "auto":
            self.start_tls = None  # STARTTLS when the server offers it
        if self.use_tls:
            self.start_tls = False
        self.validate_certs = query.get("verify", "true") not in ("0", "false", "no")


class SmtpTransport:
    """A small pool of reused SMTP connections with a concurrency limit."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout: float = 30.0) -> None:
        self.options = SmtpOptions(url)
        self.timeout = timeout
        self._limit = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections_opened = 0

    async def _connect(self) -> aiosmtplib.SMTP:
        o = self.options
        client = aiosmtplib.SMTP(
            hostname=o.hostname,
            port=o.port,
            username=o.username,
            password=o.password,
            use_tls=o.use_tls,
            start_tls=o.start_tls,
            validate_certs=o.validate_certs,
            timeout=self.timeout,
        )
        await client.connect()
        self.connections_opened += 1
        return client

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                try:
                    await client.noop()
                    return client
                except (aiosmtplib.SMTPException, OSError):
                    await _quietly_close(client)
        return await self._connect()

    async def send(self, message: EmailMessage) -> None:
        async with self._limit:
            try:
                client = await self._checkout()
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise TransientMailError(f"cannot connect: {exc}") from exc
            try:
                await client.send_message(message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(client)
                codes = [r.code for r in exc.recipients]
                text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
                if codes and all(code >= 500 for code in codes):
                    raise PermanentMailError(text) from exc
                raise TransientMailError(text) from exc
            except aiosmtplib.SMTPResponseException as exc:
                await _quietly_reset(client, self._idle)
                if exc.code >= 500:
                    raise PermanentMailError(f"{exc.code} {exc.message}") from exc
                raise TransientMailError(f"{exc.code} {exc.message}") from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                await _quietly_close(client)
                raise TransientMailError(str(exc) or exc.__class__.__name__) from exc
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _quietly_close(client, polite=True)


async def _quietly_reset(client: aiosmtplib.SMTP, idle: list[aiosmtplib.SMTP]) -> None:
    try:
        await client.rset()
        idle.append(client)
    except (aiosmtplib.SMTPException, OSError):
        await _quietly_close(client)


async def _quietly_close(client: aiosmtplib.SMTP, *, polite: bool = False) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        if polite and client.is_connected:
            await client.quit()
            return
    client.close()


def build_transport(settings: Settings) -> MailTransport:
    if settings.smtp_url is not None:
        return SmtpTransport(
            settings.smtp_url.get_secret_value(),
            pool_size=settings.smtp_pool_size,
            timeout=settings.smtp_timeout_seconds,
        )
    return FileTransport(settings.outbox_dir)
