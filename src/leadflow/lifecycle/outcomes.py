"""What happens after SMTP answered: the message is sent or failed, the sequence moves on."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import update

from leadflow.config import Settings
from leadflow.kit.db import Database
from leadflow.lifecycle.scheduling import retry_delay
from leadflow.lifecycle.sequence import settle, stop
from leadflow.models.enrollments import Enrollment, Message
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
    email: EmailMessage


async def record_sent(
    db: Database, now: dt.datetime, out: Outgoing, report: DispatchReport
) -> None:
    """The server took it: mark it sent, count it, advance the sequence, notify."""
    async with db.session() as session:
        await session.execute(
            update(Message)
            .where(Message.id == out.message_id)
            .values(
                status=MessageStatus.SENT,
                sent_at=now,
                updated_at=now,
                subject=out.email["Subject"],
                message_id_header=out.email["Message-ID"],
                last_error=None,
            )
        )
        values: dict[str, object] = {
            "next_step": out.step + 1,
            "attempts": 0,
            "lease_until": None,
            "lease_token": None,
            "updated_at": now,
        }
        if out.next_delay is None:
            values["state"] = EnrollmentState.COMPLETED
        else:
            values["next_due_at"] = now + out.next_delay
        # Conditional on the step: a stop (purchase, unsubscribe) during the send wins.
        advanced = await session.execute(
            update(Enrollment)
            .where(
                Enrollment.id == out.enrollment_id,
                Enrollment.next_step == out.step,
                Enrollment.state == EnrollmentState.ACTIVE,
            )
            .values(**values)
            .returning(Enrollment.id)
        )
        message = await session.get_one(Message, out.message_id)
        await bump(
            session,
            account_id=message.account_id,
            campaign_id=message.campaign_id,
            variant_id=message.variant_id,
            step=message.step,
            when=now,
            followups=1,
            targeted=1 if message.step == 1 else 0,
        )
        await events.followup_sent(session, message, now)
        if advanced.scalar_one_or_none() is not None and out.next_delay is None:
            report.completed += 1
            enrollment = await session.get_one(Enrollment, out.enrollment_id)
            await events.followups_completed(session, enrollment, out.step, now)
    report.sent += 1


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
