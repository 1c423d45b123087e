"""Mail transports: SMTP (pooled, aiosmtplib) or ``.eml`` files for a fresh machine."""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import functools
import os
import re
import secrets
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiosmtplib.typing import Default

from leadflow.config import Settings


class TransientMailError(Exception):
    """Not delivered, worth retrying (4xx replies, connection problems)."""


class PermanentMailError(Exception):
    """Refused for good (5xx replies): retrying would not help."""


class MaybeDelivered(Exception):
    """The connection failed after DATA began: the server may have the message. Not retried
    (that could send it twice); the sender settles it as ``unknown``."""


class SendWithdrawn(Exception):
    """``before_data`` said no: the message was not handed over (the envelope is reset), as
    another attempt owns it now."""


# Called once MAIL FROM is about to go out; DATA begins only if what it returns answers
# True. Awaited while the envelope is being sent, so what it records costs the send little.
BeforeData = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class WireEmail:
    """A message already in its wire form, built without the email package's object model
    (which costs milliseconds a message): the envelope, the bytes, and the headers as given.
    Reads like an ``EmailMessage`` where transports need it (``message["Message-ID"]``,
    ``as_bytes()``)."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    headers: tuple[tuple[str, str], ...]

    def __getitem__(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def as_bytes(self) -> bytes:
        return self.data


Mail = EmailMessage | WireEmail

_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})
_MAX_LINE = 998  # RFC 5322: the limit; unfolded ASCII values reach it only in theory


# A bare address that needs no parsing: the usual recipient.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@functools.lru_cache(maxsize=1024)
def _address(value: str) -> tuple[str, str]:
    """``(display name, address)`` of a one-address header (a sender repeats: kept)."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return "", value
    return parseaddr(value)


@functools.lru_cache(maxsize=1024)
def _address_line(name: str, value: str) -> str:
    display, address = _address(value)
    if not address or not address.isascii():
        raise ValueError(f"{name}: {value!r} is not an ASCII address")
    # A display name outside ASCII becomes an RFC 2047 encoded-word.
    return f"{name}: {formataddr((display, address), charset='utf-8')}"


def _header_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line")
    if name.lower() in _ADDRESS_HEADERS:
        if _PLAIN_ADDRESS.fullmatch(value):
            return f"{name}: {value}"
        return _address_line(name, value)
    if value.isascii():
        if len(name) + 2 + len(value) > _MAX_LINE:
            raise ValueError(f"{name} is longer than a line")
        return f"{name}: {value}"
    # Outside ASCII: RFC 2047 encoded-words, folded to lines of at most 76 characters.
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=chr(10))}"


def _text_part(subtype: str, content: str) -> str:
    # Every line ends with a newline, as EmailMessage.set_content writes it.
    body = "\n".join(content.splitlines()) + "\n"
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n\n"
        f"{encoded}"
    )


def wire_email(headers: Sequence[tuple[str, str]], *, text: str, html: str) -> WireEmail:
    """A ``multipart/alternative`` message (plain text, then HTML, both UTF-8 in
    quoted-printable) with ``headers`` in order; ``From`` and ``To`` make the envelope.
    Raises ValueError for what it cannot write in ASCII (an address outside ASCII, a header
    spanning lines): build such a message with ``EmailMessage`` instead."""
    lines = [_header_line(name, value) for name, value in headers]
    given = dict((name.lower(), value) for name, value in headers)
    mail_from = _address(given.get("sender") or given.get("from", ""))[1]
    rcpt_to = tuple(_address(given[key])[1] for key in ("to", "cc") if key in given)
    if not mail_from or not rcpt_to:
        raise ValueError("a message needs From and To")
    # "=" never occurs unencoded in quoted-printable, so no body line can match the boundary.
    boundary = f"=_{secrets.token_hex(16)}"
    text_part, html_part = _text_part("plain", text), _text_part("html", html)
    # The line break before a boundary belongs to the boundary, not to the part.
    data = (
        "\n".join(lines)
        + "\nMIME-Version: 1.0\n"
        + f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
        + f"--{boundary}\n{text_part}\n--{boundary}\n{html_part}\n--{boundary}--\n"
    )
    return WireEmail(
        mail_from=mail_from,
        rcpt_to=rcpt_to,
        data=data.replace("\n", "\r\n").encode("ascii"),
        headers=tuple(headers),
    )


class MailTransport(Protocol):
    async def send(self, message: Mail, *, before_data: BeforeData | None = None) -> None:
        """Hand ``message`` over. With ``before_data``: call it before the message itself is
        transmitted (SMTP DATA); a False answer (or an error) means it is not, and raises
        SendWithdrawn (or the error)."""
        ...

    async def close(self) -> None: ...


class FileTransport:
    """Writes each message to ``<outbox>/<message id>.eml`` (the default without SMTP)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: Mail, *, before_data: BeforeData | None = None) -> None:
        if before_data is not None and not await before_data():
            raise SendWithdrawn
        await asyncio.to_thread(self._write, message)

    def _write(self, message: Mail) -> None:
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


# A pooled connection unused this long is checked with NOOP before it carries a message
# (servers drop idle clients); one in steady use goes straight to MAIL FROM.
IDLE_CHECK_SECONDS = 5.0


class _Client(aiosmtplib.SMTP):
    """An SMTP connection that waits, before DATA, for what the sender records first."""

    before_data: asyncio.Future[bool] | None = None
    data_began = False  # this send reached DATA: a failure from here may leave it delivered

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: Any = Default.token,  # noqa: ASYNC109
    ) -> aiosmtplib.SMTPResponse:
        pending, self.before_data = self.before_data, None
        if pending is not None and not await pending:
            raise SendWithdrawn
        self.data_began = True
        return await super().data(message, timeout=timeout)


class SmtpTransport:
    """A small pool of reused SMTP connections with a concurrency limit."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout: float = 30.0) -> None:
        self.options = SmtpOptions(url)
        self.timeout = timeout
        self._limit = asyncio.Semaphore(pool_size)
        self._idle: list[_Client] = []
        self._last_used: weakref.WeakKeyDictionary[_Client, float] = weakref.WeakKeyDictionary()
        self.connections_opened = 0

    async def _connect(self) -> _Client:
        o = self.options
        client = _Client(
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

    async def _checkout(self) -> _Client:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                used = self._last_used.get(client, 0.0)
                if time.monotonic() - used < IDLE_CHECK_SECONDS:
                    return client
                try:
                    await client.noop()
                    return client
                except (aiosmtplib.SMTPException, OSError):
                    await _quietly_close(client)
        return await self._connect()

    async def send(self, message: Mail, *, before_data: BeforeData | None = None) -> None:
        async with self._limit:
            try:
                client = await self._checkout()
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise TransientMailError(f"cannot connect: {exc}") from exc
            # Started now, awaited right before DATA: it runs during MAIL FROM and RCPT TO.
            pending = asyncio.ensure_future(before_data()) if before_data is not None else None
            client.before_data = pending
            client.data_began = False
            try:
                if isinstance(message, WireEmail):
                    await client.sendmail(message.mail_from, list(message.rcpt_to), message.data)
                else:
                    await client.send_message(message)
            except SendWithdrawn:
                await _quietly_reset(client, self._idle)
                raise
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
                reason = str(exc) or exc.__class__.__name__
                if client.data_began:  # no reply to DATA: it may have been accepted
                    raise MaybeDelivered(reason) from exc
                raise TransientMailError(reason) from exc
            except BaseException:  # before_data failed (or the send was cancelled): no DATA
                await _quietly_close(client)
                raise
            finally:
                client.before_data = None
                if pending is not None and not pending.done():
                    # DATA was never reached: what it records must not outlive the attempt
                    # unobserved (the outcome recorded next makes it moot).
                    with contextlib.suppress(Exception):
                        await pending
            self._last_used[client] = time.monotonic()
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            await _quietly_close(client, polite=True)


async def _quietly_reset(client: _Client, idle: list[_Client]) -> None:
    try:
        await client.rset()
        idle.append(client)
    except (aiosmtplib.SMTPException, OSError):
        await _quietly_close(client)


async def _quietly_close(client: _Client, *, polite: bool = False) -> None:
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
