"""When a follow-up may go out, given what else goes to the same address."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.service import min_delay
from leadflow.kit.db import UTCDateTime
from leadflow.kit.leases import lease_free
from leadflow.kit.locking import lock_key
from leadflow.lifecycle.scheduling import next_allowed
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Lead, LeadGroup
from leadflow.vocabulary import MAYBE_SENT, EnrollmentState, MessageStatus, SourceType


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


def claimable_by_join(now: dt.datetime, limit: int) -> Select[Any]:
    """Due enrollments nobody holds, joined with their account, campaign, lead and lead group
    and filtered by ``not_paused``: the claim on SQLite (one writer; its tables stay small),
    and on PostgreSQL before ``claimable`` (a scan of every due row, paused ones included)."""
    return (
        select(Enrollment.id)
        .join(Account, Account.id == Enrollment.account_id)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .join(Lead, Lead.id == Enrollment.lead_id)
        .outerjoin(
            LeadGroup,
            and_(LeadGroup.account_id == Enrollment.account_id, LeadGroup.key == Lead.source_type),
        )
        .where(
            Enrollment.state == EnrollmentState.ACTIVE,
            Enrollment.next_due_at <= now,
            lease_free(Enrollment, now),
            not_paused(now),
        )
        .order_by(Enrollment.next_due_at)
        .limit(limit)
    )


def claimable() -> Select[Any]:
    """The ids of the first ``:limit`` due, unleased, active enrollments at ``:now`` that are
    not paused (the rule of ``not_paused``), oldest due first, locked with ``SKIP LOCKED``
    (PostgreSQL; execute it with the parameters ``now`` and ``limit``).

    Driven by the small tables: for every campaign that runs or has finished, of an account
    that is switched on, and every source type whose lead group is not switched off, the due
    head of ``ix_enrollments_claim`` (active enrollments by campaign, source type and due
    time). Paused, finished and not yet due enrollments are never read, however many there
    are. Enrollments whose source type was not recorded are checked against their lead.
    Built once: its compiled form is cached like any statement's.
    """
    return _claimable()


@functools.cache
def _claimable() -> Select[Any]:
    now: Any = bindparam("now", type_=UTCDateTime())
    limit = bindparam("limit", type_=Integer())
    sources = (
        func.unnest(postgresql.array([source.value for source in SourceType]))
        .table_valued("source_type")
        .render_derived(name="sources")
    )
    group_off = (
        exists()
        .where(
            LeadGroup.account_id == Campaign.account_id,
            LeadGroup.key == sources.c.source_type,
            LeadGroup.active.is_(False),
        )
        .correlate_except(LeadGroup)  # the campaign and source of the enclosing query
    )
    due = (
        Enrollment.campaign_id == Campaign.id,
        Enrollment.state == EnrollmentState.ACTIVE.value,
        Enrollment.next_due_at <= now,
        lease_free(Enrollment, now),
    )
    # Inside the lateral, the check of the campaign's and source's lead group is a gate in
    # front of the index scan: a switched-off group's enrollments are not even read.
    by_source = (
        select(Enrollment.id, Enrollment.next_due_at)
        .where(*due, Enrollment.source_type == sources.c.source_type, ~group_off)
        .order_by(Enrollment.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .lateral("by_source")
    )
    lead_group_off = (
        select(LeadGroup.id)
        .join(
            Lead,
            and_(LeadGroup.account_id == Lead.account_id, LeadGroup.key == Lead.source_type),
        )
        .where(Lead.id == Enrollment.lead_id, LeadGroup.active.is_(False))
        .exists()
    )
    unrecorded = (
        select(Enrollment.id, Enrollment.next_due_at)
        .where(*due, Enrollment.source_type.is_(None), ~lead_group_off)
        .order_by(Enrollment.next_due_at)
        .limit(limit)
        .with_for_update(of=Enrollment, skip_locked=True)
        .lateral("unrecorded")
    )
    campaigns = (
        Account.lead_management_enabled.is_(True),
        or_(Campaign.is_running(now), Campaign.is_finished(now)),
    )
    known = (
        select(by_source.c.id, by_source.c.next_due_at)
        .select_from(Campaign)
        .join(Account, Account.id == Campaign.account_id)
        .join(sources, true())
        .join(by_source, true())
        .where(*campaigns)
    )
    unknown = (
        select(unrecorded.c.id, unrecorded.c.next_due_at)
        .select_from(Campaign)
        .join(Account, Account.id == Campaign.account_id)
        .join(unrecorded, true())
        .where(*campaigns)
    )
    both = known.union_all(unknown).subquery("claimable")
    return select(both.c.id).order_by(both.c.next_due_at).limit(limit)


def is_paused(
    account: Account, group_active: bool | None, campaign: Campaign, now: dt.datetime
) -> bool:
    """The same rule on loaded rows, for a campaign that has not finished."""
    return (
        not account.lead_management_enabled or group_active is False or not campaign.is_running(now)
    )


def due_after(
    due: dt.datetime,
    step: int,
    account: Account,
    lead: Lead,
    campaign: Campaign,
    variant: Variant,
    last: dt.datetime | None,
) -> dt.datetime:
    """When step ``step``, due at ``due``, may go out, given ``last``: the newest follow-up
    of another enrollment recorded for the same address (or None)."""
    if step == 1:
        # The minimum delay is the merchant's current setting, applied at send time.
        due = max(due, first_due(account, lead, variant))
    if last is not None:
        due = max(due, last + dt.timedelta(hours=account.min_hours_between_emails))
    timezone = lead.timezone or account.timezone
    return next_allowed(due, campaign.send_window, timezone)


def last_sent(account_id: str, emails: list[str]) -> Select[str, str, dt.datetime]:
    """Per address of ``emails`` and enrollment: the newest follow-up of the account that
    went out or is going out (the frequency cap's input, for many addresses at once)."""
    return (
        select(
            Message.to_email,
            Message.enrollment_id,
            func.max(func.coalesce(Message.sent_at, Message.created_at)),
        )
        .where(
            Message.account_id == account_id,
            Message.to_email.in_(emails),
            Message.status.in_((*MAYBE_SENT, MessageStatus.SENDING)),
        )
        .group_by(Message.to_email, Message.enrollment_id)
    )


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # coalesce() loses the type on SQLite
        return value.replace(tzinfo=dt.UTC)
    return value


async def due_at(
    session: AsyncSession,
    account: Account,
    lead: Lead,
    campaign: Campaign,
    variant: Variant,
    enrollment: Enrollment,
) -> dt.datetime:
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
    return due_after(
        enrollment.next_due_at,
        enrollment.next_step,
        account,
        lead,
        campaign,
        variant,
        aware(last),
    )


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
