"""What happens after SMTP answered: the message is sent or failed, the sequence moves on."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from leadflow.config import Settings
from leadflow.kit.clock import Clock
from leadflow.kit.db import ROWS_PER_STATEMENT, Database, UTCDateTime, chunks
from leadflow.kit.mail import Mail
from leadflow.kit.metrics import FOLLOWUPS, count_after_commit, step_label
from leadflow.lifecycle.scheduling import retry_delay
from leadflow.lifecycle.sequence import settle, stop
from leadflow.models.campaigns import Variant
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.notifications import IlnEndpoint
from leadflow.notifications import events
from leadflow.stats.service import bump
from leadflow.vocabulary import EnrollmentState, MessageStatus, StopReason

log = logging.getLogger("leadflow.dispatch")


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    rescheduled: int = 0
    retried: int = 0
    failed: int = 0
    stopped: int = 0
    completed: int = 0
    skipped: int = 0
    released: int = 0  # claims given back unprocessed at shutdown
    errors: list[str] = field(default_factory=list)


@dataclass
class Outgoing:
    message_id: str
    enrollment_id: str
    step: int
    last_step: int
    next_delay: dt.timedelta | None
    email: Mail
    account_id: str = ""
    campaign_id: str = ""
    variant_id: str = ""
    attempt: int = 1  # the message row's ``attempts`` when this send was decided


class DataMarks:
    """Records, durably, where each send of a batch stands with the mail server, so that a
    worker dying mid-batch leaves as few follow-ups ``unknown`` as can be:

    - ``mark``: before SMTP DATA begins, that the attempt is about to hand its message over
      (``Message.data_started_at``). Without it the message certainly never reached the
      server and is sent again; with it, it may have. Refused (False) when the attempt no
      longer owns its message (its claim ran out and another worker took the send over, or
      it was given up): DATA must not begin then.
    - ``sent``: once the server took it, that it is ``sent``, without waiting for the rest of
      the batch (whose sequences, counters and notifications are recorded together after).

    One autocommitted statement (no BEGIN and COMMIT) covers everything asked for while the
    one before was being written: the sends of a pool ask at about the same time, so the
    cost is one statement for several messages, and a mark is paid while the envelope (MAIL
    FROM, RCPT TO) is being sent. While a batch is sent (``held``) they keep one connection,
    so they cost no pool checkout either."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.clock = clock
        self._waiting: list[tuple[Outgoing, asyncio.Future[bool]]] = []
        self._sent: list[str] = []
        self._writer: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None
        self._holders = 0

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Keep the connection open for the block (a batch being sent). On the way out,
        what was asked for is written first: the batch's outcomes, recorded next, never
        update the same rows at the same time."""
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._writer is not None and not self._writer.done():
                with contextlib.suppress(Exception):
                    await self._writer
            if not self._holders and (self._writer is None or self._writer.done()):
                await self._let_go()

    def mark(self, out: Outgoing) -> asyncio.Future[bool]:
        """Ask for the DATA mark of ``out``; the future says whether it was written."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((out, done))
        self._wake()
        return done

    def sent(self, out: Outgoing) -> None:
        """The server took ``out``: mark it ``sent`` soon (nobody waits for it)."""
        self._sent.append(out.message_id)
        self._wake()

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._waiting or self._sent:
                batch, self._waiting = self._waiting, []
                sent, self._sent = self._sent, []
                keys = [(out.message_id, out.attempt) for out, _ in batch]
                try:
                    marked = await self._execute(keys, sent)
                except Exception as exc:  # each send learns it, and does not begin DATA
                    await self._let_go()
                    if sent:  # the batch's outcomes, recorded after it, say sent anyway
                        log.warning("marking %d follow-ups sent failed: %s", len(sent), exc)
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for out, done in batch:
                    if not done.done():
                        done.set_result(out.message_id in marked)
        finally:
            if not self._holders:
                await self._let_go()

    async def _execute(self, keys: list[tuple[str, int]], sent: list[str]) -> set[str]:
        if self._connection is None:
            self._connection = await self.engine.connect()
        now = self.clock.now()
        if self._connection.dialect.name == "postgresql":
            # The driver itself, one prepared statement (one commit) for any number of marks:
            # a mark is on the path of every send, and the ORM's work per statement would
            # cost as much again.
            raw = await self._connection.get_raw_connection()
            driver: Any = raw.driver_connection
            rows = await driver.fetch(
                _MARKS_POSTGRESQL,
                now,
                [message_id for message_id, _ in keys],
                [attempt for _, attempt in keys],
                sent,
            )
            return {row[0] for row in rows}
        marked: set[str] = set()
        if keys:
            result = await self._connection.execute(_MARK_DATA, {"keys": keys, "now": now})
            marked.update(result.scalars())
        if sent:
            await self._connection.execute(_MARK_SENT, {"ids": sent, "now": now})
        return marked

    async def _let_go(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


_MARKS_POSTGRESQL = (
    "WITH data AS ("
    " UPDATE messages AS m SET data_started_at = $1"
    " FROM unnest($2::varchar[], $3::integer[]) AS k(id, attempts)"
    " WHERE m.id = k.id AND m.attempts = k.attempts"
    " AND m.status = 'sending' AND m.data_started_at IS NULL"
    " RETURNING m.id"
    "), sent AS ("
    " UPDATE messages SET status = 'sent', sent_at = $1, updated_at = $1, last_error = NULL"
    " WHERE id = ANY($4::varchar[]) AND status = 'sending'"
    ") SELECT id FROM data"
)
_MARK_DATA = (
    update(Message)
    .where(
        tuple_(Message.id, Message.attempts).in_(bindparam("keys", expanding=True)),
        Message.status == MessageStatus.SENDING.value,
        Message.data_started_at.is_(None),
    )
    .values(data_started_at=bindparam("now", type_=UTCDateTime()))
    .returning(Message.id)
)
_MARK_SENT = (
    update(Message)
    .where(
        Message.id.in_(bindparam("ids", expanding=True)),
        Message.status == MessageStatus.SENDING.value,
    )
    .values(
        status=MessageStatus.SENT.value,
        sent_at=bindparam("now", type_=UTCDateTime()),
        updated_at=bindparam("now", type_=UTCDateTime()),
        last_error=None,
    )
)


async def settle_orphaned_sends(
    session: AsyncSession, now: dt.datetime, lease: dt.timedelta
) -> tuple[int, int]:
    """Messages a dead worker left ``sending`` whose sequence stopped meanwhile (a purchase,
    an unsubscribe): stopping gives up the enrollment's lease and no claim comes back to it,
    so they are settled here once they are older than a lease (a live worker's send ends
    within its SMTP timeouts, well inside one). With the DATA mark the server may have it:
    ``unknown``, as at lease expiry. Without it, it was never handed over and never will be:
    the row goes, as when a worker gives back what it has not started. Returns (unknown,
    withdrawn)."""
    stopped = select(Enrollment.id).where(Enrollment.state != EnrollmentState.ACTIVE)
    in_flight = and_(
        Message.status == MessageStatus.SENDING,
        Message.updated_at < now - lease,
        Message.enrollment_id.in_(stopped),
    )
    unknown = await session.execute(
        update(Message)
        .where(in_flight, Message.data_started_at.is_not(None))
        .values(
            status=MessageStatus.UNKNOWN,
            last_error="worker stopped while handing the message over; not resent",
            sent_at=Message.data_started_at,
            updated_at=now,
        )
        .returning(Message.id)
    )
    withdrawn = await session.execute(
        delete(Message).where(in_flight, Message.data_started_at.is_(None)).returning(Message.id)
    )
    return len(unknown.all()), len(withdrawn.all())


async def notified_accounts(session: AsyncSession, account_ids: Iterable[str]) -> set[str]:
    """The accounts of ``account_ids`` with an enabled notification endpoint: only theirs
    need a look at which notifications to queue."""
    ids = sorted(set(account_ids))
    if not ids:
        return set()
    rows = await session.execute(
        select(IlnEndpoint.account_id)
        .where(IlnEndpoint.account_id.in_(ids), IlnEndpoint.enabled.is_(True))
        .distinct()
    )
    return set(rows.scalars())


async def record_sent(
    db: Database, now: dt.datetime, out: Outgoing, report: DispatchReport
) -> None:
    """The server took it: mark it sent, count it, advance the sequence, notify."""
    await record_sent_many(db, now, [out], report)


async def record_sent_many(
    db: Database, now: dt.datetime, outs: Sequence[Outgoing], report: DispatchReport
) -> None:
    """``record_sent`` for many messages in one transaction and a few statements: one update
    of the messages, one of the enrollments per step and delay, one counter per group."""
    if not outs:
        return
    async with db.session() as session:
        for chunk in chunks([out.message_id for out in outs], ROWS_PER_STATEMENT):
            await session.execute(
                update(Message)
                .where(Message.id.in_(chunk))
                .values(
                    status=MessageStatus.SENT,
                    sent_at=now,
                    updated_at=now,
                    last_error=None,
                )
            )
        by_move: dict[tuple[int, dt.timedelta | None], list[str]] = defaultdict(list)
        for out in outs:
            by_move[(out.step, out.next_delay)].append(out.enrollment_id)
        completed: set[str] = set()
        for (step, next_delay), enrollment_ids in by_move.items():
            values: dict[str, object] = {
                "next_step": step + 1,
                "attempts": 0,
                "lease_until": None,
                "lease_token": None,
                "updated_at": now,
            }
            if next_delay is None:
                values["state"] = EnrollmentState.COMPLETED
            else:
                values["next_due_at"] = now + next_delay
            for chunk in chunks(enrollment_ids, ROWS_PER_STATEMENT):
                # Conditional on the step: a stop (purchase, unsubscribe) during the send wins.
                advanced = await session.execute(
                    update(Enrollment)
                    .where(
                        Enrollment.id.in_(chunk),
                        Enrollment.next_step == step,
                        Enrollment.state == EnrollmentState.ACTIVE,
                    )
                    .values(**values)
                    .returning(Enrollment.id)
                )
                if next_delay is None:
                    completed.update(advanced.scalars())
        counts = Counter(
            (out.account_id, out.campaign_id, out.variant_id, out.step) for out in outs
        )
        for (account_id, campaign_id, variant_id, step), count in counts.items():
            await bump(
                session,
                account_id=account_id,
                campaign_id=campaign_id,
                variant_id=variant_id,
                step=step,
                when=now,
                followups=count,
                targeted=count if step == 1 else 0,
            )
        notified = await notified_accounts(session, (out.account_id for out in outs))
        for out in outs:
            if out.account_id not in notified:
                continue
            message = await session.get_one(Message, out.message_id)
            await events.followup_sent(session, message, now)
            if out.enrollment_id in completed:
                enrollment = await session.get_one(Enrollment, out.enrollment_id)
                await events.followups_completed(session, enrollment, out.step, now)
    report.sent += len(outs)
    report.completed += len(completed)
    for step, count in Counter(out.step for out in outs).items():
        FOLLOWUPS.labels("sent", step_label(step)).inc(count)


async def record_sent_late(
    session: AsyncSession,
    message: Message,
    enrollment: Enrollment,
    variant: Variant,
    now: dt.datetime,
) -> None:
    """What ``record_sent_many`` records besides the message, for a follow-up marked sent
    whose worker died before it recorded the rest: the counters and the notifications (the
    caller moves the sequence on). Never twice: the sequence moves on in the same transaction,
    so the step is not found again."""
    sent_at = message.sent_at or now
    count_after_commit(session, FOLLOWUPS.labels("sent", step_label(message.step)))
    await bump(
        session,
        account_id=message.account_id,
        campaign_id=message.campaign_id,
        variant_id=message.variant_id,
        step=message.step,
        when=sent_at,
        followups=1,
        targeted=1 if message.step == 1 else 0,
    )
    if await notified_accounts(session, [message.account_id]):
        await events.followup_sent(session, message, now)
        if message.step >= len(variant.steps):
            await events.followups_completed(session, enrollment, message.step, now)


async def record_failure(
    db: Database,
    settings: Settings,
    now: dt.datetime,
    out: Outgoing,
    error: str,
    *,
    permanent: bool,
    report: DispatchReport,
) -> None:
    """Not delivered: retry later with backoff, or give up (5xx, or out of attempts)."""
    async with db.session() as session:
        enrollment = await session.get_one(Enrollment, out.enrollment_id)
        attempts = enrollment.attempts + 1
        give_up = permanent or attempts >= settings.smtp_max_attempts
        await session.execute(
            update(Message)
            .where(Message.id == out.message_id)
            .values(
                status=MessageStatus.FAILED if give_up else MessageStatus.DEFERRED,
                last_error=error[:2000],
                updated_at=now,
            )
        )
        enrollment.attempts = attempts
        settle(enrollment, now)
        if give_up:
            if enrollment.state == EnrollmentState.ACTIVE:
                reason = StopReason.SMTP_REJECTED if permanent else StopReason.SMTP_UNAVAILABLE
                stop(enrollment, reason, now)
            report.failed += 1
            message = await session.get_one(Message, out.message_id)
            await events.followup_failed(session, message, error[:2000], now)
            log.warning("follow-up %s failed for good: %s", out.message_id, error)
        else:
            enrollment.next_due_at = now + retry_delay(
                attempts,
                settings.smtp_retry_base_seconds,
                settings.smtp_retry_max_seconds,
            )
            report.retried += 1
            log.info("follow-up %s deferred (attempt %d): %s", out.message_id, attempts, error)
    FOLLOWUPS.labels("failed" if give_up else "deferred", step_label(out.step)).inc()
