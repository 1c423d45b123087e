"""When a follow-up may go out, given what else goes to the same address."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.service import min_delay
from leadflow.kit.locking import lock_key
from leadflow.lifecycle.scheduling import next_allowed
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Lead, LeadGroup
from leadflow.vocabulary import MAYBE_SENT, MessageStatus


def first_due(account: Account, lead: Lead, variant: Variant) -> dt.datetime:
    """The first step waits its delay, and never less than the account's minimum delay for
    the lead's source."""
    delay = dt.timedelta(seconds=variant.steps[0]["delay_seconds"])
    return lead.captured_at + max(delay, min_delay(account, lead.source_type))


def not_paused(now: dt.datetime) -> ColumnElement[bool]:
    """SQL over enrollments joined with their account, campaign, lead and (outer) lead group:
    the account's switch is on, the lead's group is not switched off, and the campaign runs
    or has finished for good (those are claimed so that they get stopped). Paused work is
    simply not claimed; it keeps its due time."""
    return and_(
        Account.lead_management_enabled.is_(True),
        or_(LeadGroup.active.is_(None), LeadGroup.active.is_(True)),
        or_(Campaign.is_running(now), Campaign.is_finished(now)),
    )


def is_paused(
    account: Account, group_active: bool | None, campaign: Campaign, now: dt.datetime
) -> bool:
    """The same rule on loaded rows, for a campaign that has not finished."""
    return (
        not account.lead_management_enabled or group_active is False or not campaign.is_running(now)
    )


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
        due = max(due, first_due(account, lead, variant))
    last = (
        await session.execute(
            select(func.max(func.coalesce(Message.sent_at, Message.created_at))).where(
                Message.account_id == account.id,
                Message.to_email == lead.email,
                Message.enrollment_id != enrollment.id,
                Message.status.in_((*MAYBE_SENT, MessageStatus.SENDING)),
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
    if not await lock_key(session, f"dispatch:{enrollment.account_id}:{lead.email}"):
        # SQLite has one writer: writing first takes the write lock now, so the reads
        # below come after any other worker's committed message.
        await session.execute(
            update(Enrollment).where(Enrollment.id == enrollment.id).values(updated_at=now)
        )
