"""When a follow-up may go out, given what else goes to the same address."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.accounts.service import min_delay
from leadflow.campaigns.models import Campaign, Variant
from leadflow.dispatch.models import Enrollment, Message
from leadflow.dispatch.scheduling import next_allowed
from leadflow.leads.models import Lead


async def due_at(
    session: AsyncSession,
    account: Account,
    lead: Lead,
    campaign: Campaign,
    variant: Variant,
    enrollment: Enrollment,
) -> dt.datetime:
    due = enrollment.next_due_at
    if enrollment.next_step == 1:
        # The minimum delay is the merchant's current setting, applied at send time.
        delay = dt.timedelta(seconds=variant.steps[0]["delay_seconds"])
        due = max(due, lead.captured_at + max(delay, min_delay(account, lead.source_type)))
    last = (
        await session.execute(
            select(func.max(func.coalesce(Message.sent_at, Message.created_at))).where(
                Message.account_id == account.id,
                Message.to_email == lead.email,
                Message.enrollment_id != enrollment.id,
                Message.status.in_(("sent", "unknown", "sending")),
            )
        )
    ).scalar_one_or_none()
    if last is not None:
        if last.tzinfo is None:  # coalesce() loses the column type on SQLite
            last = last.replace(tzinfo=dt.UTC)
        due = max(due, last + dt.timedelta(hours=account.min_hours_between_emails))
    timezone = lead.timezone or account.timezone
    return next_allowed(due, campaign.send_window, timezone)


async def lock_recipient(
    session: AsyncSession, enrollment: Enrollment, lead: Lead, now: dt.datetime
) -> None:
    """Serialise the decisions about one address until this transaction ends, so the
    frequency cap sees a follow-up another enrollment (same tick, other worker) records."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"dispatch:{enrollment.account_id}:{lead.email}"},
        )
    else:
        # SQLite has one writer: writing first takes the write lock now, so the reads
        # below come after any other worker's committed message.
        await session.execute(
            update(Enrollment).where(Enrollment.id == enrollment.id).values(updated_at=now)
        )
