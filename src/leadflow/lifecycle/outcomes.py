"""What happens after SMTP answered: the message is sent or failed, the sequence moves on."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit.db import ROWS_PER_STATEMENT, Database, chunks
from leadflow.kit.mail import Mail
from leadflow.lifecycle.scheduling import retry_delay
from leadflow.lifecycle.sequence import settle, stop
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
