"""Bounces and complaints: the only writer of ``mail_outcomes``. A provider's report is
stored once (its event id), matched to the follow-up it is about, and applied: a hard bounce
or a complaint suppresses the address at once (which stops its sequences), soft bounces do
after ``soft_bounce_limit`` of them within ``soft_bounce_window_days``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.lifecycle.tracking import suppress
from leadflow.models.bounces import MailOutcome
from leadflow.models.enrollments import Message
from leadflow.models.leads import Lead
from leadflow.notifications import events
from leadflow.stats.service import bump
from leadflow.vocabulary import MAYBE_SENT, SuppressionReason

# At most this many leads of one address are notified for one outcome matching no follow-up.
MAX_NOTIFIED_LEADS = 100


class BounceKind(StrEnum):
    HARD = "hard_bounce"
    SOFT = "soft_bounce"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class Report:
    """One provider's report about one recipient, normalised."""

    provider: str
    external_id: str
    kind: BounceKind
    email: str
    occurred_at: dt.datetime
    # Ways to find the follow-up, best first: our Message-ID header (with or without <>)…
    message_id_header: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class Policy:
    soft_limit: int
    soft_window: dt.timedelta
    match_window: dt.timedelta


@dataclass(frozen=True)
class Applied:
    outcome_id: str
    kind: str
    email: str
    duplicate: bool
    suppressed: bool
    message_id: str | None


def _header_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().strip("<>").strip()
    return f"<{value}>" if value else None


async def _match(
    session: AsyncSession, account_id: str, report: Report, window: dt.timedelta
) -> Message | None:
    """The follow-up the report is about: by our Message-ID header (every provider used
    through SMTP keeps it and most report it), else the newest one sent to the address
    before the report (within ``window``)."""
    header = _header_id(report.message_id_header)
    if header is not None:
        found = (
            await session.execute(
                select(Message).where(
                    Message.account_id == account_id, Message.message_id_header == header
                )
            )
        ).scalar_one_or_none()
        if found is not None:
            return found
    return (
        await session.execute(
            select(Message)
            .where(
                Message.account_id == account_id,
                Message.to_email == report.email,
                Message.sent_at <= report.occurred_at,
                Message.sent_at >= report.occurred_at - window,
                Message.status.in_([s.value for s in MAYBE_SENT]),
            )
            .order_by(Message.sent_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


_RANK = {None: 0, BounceKind.SOFT: 1, BounceKind.HARD: 2, BounceKind.COMPLAINT: 3}


async def _record_on_message(
    session: AsyncSession, message: Message, kind: BounceKind, now: dt.datetime
) -> None:
    """The worst outcome stays on the follow-up; each follow-up counts once as bounced and
    once as complained about, in the hour it was sent."""
    before = BounceKind(message.bounce) if message.bounce else None
    if _RANK[kind] > _RANK[before]:
        message.bounce = kind.value
        message.bounced_at = now
        message.updated_at = now
    bounced = kind is not BounceKind.COMPLAINT and before in (None, BounceKind.COMPLAINT)
    complained = kind is BounceKind.COMPLAINT and before is not BounceKind.COMPLAINT
    if bounced or complained:
        await bump(
            session,
            account_id=message.account_id,
            campaign_id=message.campaign_id,
            variant_id=message.variant_id,
            step=message.step,
            when=message.sent_at or message.created_at,
            bounces=int(bounced),
            complaints=int(complained),
        )


async def _soft_bounces(
    session: AsyncSession, account_id: str, email: str, since: dt.datetime
) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(MailOutcome)
            .where(
                MailOutcome.account_id == account_id,
                MailOutcome.email == email,
                MailOutcome.kind == BounceKind.SOFT.value,
                MailOutcome.occurred_at >= since,
            )
        )
    ).scalar_one()


async def apply_report(
    session: AsyncSession, account_id: str, report: Report, policy: Policy, now: dt.datetime
) -> Applied:
    """Store and apply one report (inside the caller's transaction). A report already
    stored (same provider and event id) changes nothing."""
    email = report.email.strip().lower()
    insert = insert_for(session)
    outcome_id = new_id("mo")
    inserted = (
        await session.execute(
            insert(MailOutcome)
            .values(
                id=outcome_id,
                account_id=account_id,
                provider=report.provider,
                external_id=report.external_id,
                kind=report.kind.value,
                email=email,
                suppressed=False,
                diagnostic=report.diagnostic,
                occurred_at=report.occurred_at,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["account_id", "provider", "external_id"])
            .returning(MailOutcome.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        stored = (
            await session.execute(
                select(MailOutcome).where(
                    MailOutcome.account_id == account_id,
                    MailOutcome.provider == report.provider,
                    MailOutcome.external_id == report.external_id,
                )
            )
        ).scalar_one()
        return Applied(
            stored.id, stored.kind, stored.email, True, stored.suppressed, stored.message_id
        )
    row = (
        await session.execute(
            select(MailOutcome).where(
                MailOutcome.account_id == account_id, MailOutcome.id == outcome_id
            )
        )
    ).scalar_one()
    message = await _match(session, account_id, replace(report, email=email), policy.match_window)
    if message is not None:
        row.message_id = message.id
        row.lead_id = message.lead_id
        await _record_on_message(session, message, report.kind, now)

    if report.kind is BounceKind.SOFT:
        since = report.occurred_at - policy.soft_window
        suppressing = await _soft_bounces(session, account_id, email, since) >= policy.soft_limit
    else:
        suppressing = True
    if suppressing:
        reason = (
            SuppressionReason.COMPLAINT
            if report.kind is BounceKind.COMPLAINT
            else SuppressionReason.BOUNCED
        )
        await suppress(session, account_id, email, reason, now)
        row.suppressed = True
        await _notify(session, account_id, row, message, now)
    return Applied(row.id, row.kind, email, False, row.suppressed, row.message_id)


async def _notify(
    session: AsyncSession,
    account_id: str,
    row: MailOutcome,
    message: Message | None,
    now: dt.datetime,
) -> None:
    """`lead.bounced` / `lead.complained` for the follow-up's lead, or for every lead of
    the address when no follow-up was matched."""
    if message is not None:
        leads = [await session.get_one(Lead, message.lead_id)]
    else:
        leads = list(
            (
                await session.execute(
                    select(Lead)
                    .where(Lead.account_id == account_id, Lead.email == row.email)
                    .order_by(Lead.id)
                    .limit(MAX_NOTIFIED_LEADS)
                )
            ).scalars()
        )
    data: dict[str, object] = {
        "kind": row.kind,
        "provider": row.provider,
        "message_id": message.id if message else None,
        "step": message.step if message else None,
        "diagnostic": row.diagnostic,
        "occurred_at": row.occurred_at,
    }
    for lead in leads:
        await events.lead_mail_outcome(
            session, lead, complaint=row.kind == BounceKind.COMPLAINT, data=data, now=now
        )
