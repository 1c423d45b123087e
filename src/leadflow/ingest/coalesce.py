"""Group commit for single events.

Platforms send webhooks one by one, many at once. Each stored event costs a dozen statements
whatever the number of events stored together (``ingest_events`` is set-based), so events for
the same account that arrive while that account's groups are being written are written
together, in one transaction, by the next writer free (at most ``WRITERS_PER_ACCOUNT`` at a
time). An idle server adds no wait: an event that finds a writer free is written at once, as a
group of one.

Each event is still verified, validated and answered on its own; a group only shares the
transaction. A group that fails for a reason other than an unreachable database is applied
again one event at a time, so one event's failure stays its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ingest.schemas import IngestResult
from leadflow.ingest.service import Delivery, ingest_events
from leadflow.kit.db import Database, is_unavailable
from leadflow.models.accounts import Account

# A group is also bounded, so one transaction stays short under a flood.
MAX_GROUP = 500
# Groups of one account written at the same time: while one waits on the database the next
# one is being built and sent, so the round trips of a group do not idle the process.
WRITERS_PER_ACCOUNT = 2


@dataclass
class _Waiting:
    delivery: Delivery
    now: dt.datetime
    answer: asyncio.Future[IngestResult] = field(default_factory=lambda: _answer())


def _answer() -> asyncio.Future[IngestResult]:
    answer: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
    # Its request may have gone (client hung up): the outcome is then nobody's to read.
    answer.add_done_callback(lambda f: f.cancelled() or f.exception())
    return answer


class EventQueue:
    """Per process: the events waiting to be written, by account."""

    def __init__(self, db: Database, attribution_window: dt.timedelta) -> None:
        self._db = db
        self._window = attribution_window
        self._waiting: dict[str, list[_Waiting]] = {}
        self._accounts: dict[str, Account] = {}
        self._writers: dict[str, set[asyncio.Task[None]]] = {}

    async def ingest(self, account: Account, delivery: Delivery, now: dt.datetime) -> IngestResult:
        """Store and apply one event (with whatever else is waiting for the account)."""
        waiting = _Waiting(delivery, now)
        self._waiting.setdefault(account.id, []).append(waiting)
        self._accounts[account.id] = account
        writers = self._writers.setdefault(account.id, set())
        if len(writers) < WRITERS_PER_ACCOUNT:
            writers.add(asyncio.create_task(self._write(account.id)))
        # Shielded: a client that hangs up does not cancel the write its event is part of.
        return await asyncio.shield(waiting.answer)

    async def aclose(self) -> None:
        """Wait for the groups being written (on shutdown)."""
        while tasks := [task for writers in self._writers.values() for task in writers]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _write(self, account_id: str) -> None:
        try:
            while waiting := self._waiting.pop(account_id, None):
                if len(waiting) > MAX_GROUP:
                    self._waiting[account_id] = waiting[MAX_GROUP:]
                    waiting = waiting[:MAX_GROUP]
                await self._apply(self._accounts[account_id], waiting)
        finally:
            writers = self._writers[account_id]
            writers.discard(asyncio.current_task())
            if not writers:
                del self._writers[account_id]
                if account_id not in self._waiting:
                    self._accounts.pop(account_id, None)

    async def _apply(self, account: Account, group: list[_Waiting]) -> None:
        now = max(w.now for w in group)

        async def work(session: AsyncSession) -> list[IngestResult]:
            return await ingest_events(
                session,
                account,
                [w.delivery for w in group],
                now=now,
                attribution_window=self._window,
            )

        try:
            results = await self._db.transaction(work)
        except Exception as exc:
            if len(group) > 1 and not is_unavailable(exc):
                for waiting in group:
                    await self._apply(account, [waiting])
                return
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        except BaseException:
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.cancel()
            raise
        for waiting, result in zip(group, results, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(result)
