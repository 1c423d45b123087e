"""``leadflow bounces``: an SMTP listener (aiosmtpd) for the bounces and complaints that come
back by mail. Every message is accepted (250, so no remote server retries or bounces it back);
the DSN and ARF reports about our follow-ups are applied like a provider's webhook."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.integrations.mail_events import policy_of
from leadflow.integrations.returns import Returned, read_returned
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database
from leadflow.lifecycle.bounces import Applied, apply_report
from leadflow.models.enrollments import Message

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class ReturnsHandler:
    """aiosmtpd handler: reads each message as DSN/ARF reports and applies them."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.policy = policy_of(settings)
        self.clock = clock

    async def apply(self, raw: bytes) -> list[Applied]:
        now = self.clock.now()
        found = read_returned(raw, now)
        if not found:
            return []

        async def work(session: AsyncSession) -> list[Applied]:
            return [a for r in found if (a := await self._apply_one(session, r, now))]

        return await self.db.transaction(work)

    async def _apply_one(
        self, session: AsyncSession, returned: Returned, now: Any
    ) -> Applied | None:
        message = (
            await session.execute(select(Message).where(Message.id == returned.message_id))
        ).scalar_one_or_none()
        if message is None:
            return None  # not one of ours (or its account is gone)
        return await apply_report(session, message.account_id, returned.report, self.policy, now)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            applied = await self.apply(raw if isinstance(raw, bytes) else raw.encode())
        except Exception:
            log.exception("could not apply a returned message")
            return "451 4.3.0 Try again later"
        log.info("returned message read", extra={"reports": len(applied)})
        return "250 2.0.0 OK"


async def start_returns_listener(
    db: Database, settings: Settings, clock: Clock, host: str, port: int
) -> asyncio.Server:
    """Listen on ``host:port`` in the running event loop; close the server to stop."""
    handler = ReturnsHandler(db, settings, clock)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="leadflow", data_size_limit=MAX_MESSAGE_BYTES),
        host=host,
        port=port,
    )


async def run_returns_listener(settings: Settings, host: str, port: int) -> None:
    """``leadflow bounces``: serve until stopped (SIGINT/SIGTERM)."""
    import signal

    from leadflow.kit.clock import SystemClock

    db = Database(settings.database_url)
    server = await start_returns_listener(db, settings, SystemClock(), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("bounce listener ready", extra={"host": host, "port": port})
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        await db.dispose()
