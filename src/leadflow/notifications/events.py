"""The notifications leadflow emits, one function per event type (called inside the
transaction that makes the change)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.codes import format_money
from leadflow.leads.views import lead_view
from leadflow.models.abtest import AbTest
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Conversion, Lead
from leadflow.notifications.schemas import (
    AbTestDecidedData,
    CampaignStatusData,
    ConversionData,
    FollowupData,
    FollowupsCompletedData,
    IlnEventType,
    LeadConvertedData,
    LeadEventData,
    MailOutcomeData,
)
from leadflow.notifications.service import emit, emit_many
from leadflow.vocabulary import AbTestStatus, CampaignStatus


async def _campaign_of(session: AsyncSession, lead_id: str) -> str | None:
    return (
        await session.execute(select(Enrollment.campaign_id).where(Enrollment.lead_id == lead_id))
    ).scalar_one_or_none()


async def leads_captured(
    session: AsyncSession, captured: Sequence[tuple[Lead, str | None]], now: dt.datetime
) -> None:
    """New leads, each with the campaign it was just enrolled in, if any."""
    if not captured:
        return
    await emit_many(
        session,
        captured[0][0].account_id,
        IlnEventType.LEAD_CAPTURED,
        [
            (LeadEventData(lead=lead_view(lead), campaign_id=campaign_id), campaign_id)
            for lead, campaign_id in captured
        ],
        now,
    )


async def lead_unsubscribed(session: AsyncSession, lead: Lead, now: dt.datetime) -> None:
    campaign_id = await _campaign_of(session, lead.id)
    data = LeadEventData(lead=lead_view(lead), campaign_id=campaign_id)
    await emit(
        session,
        lead.account_id,
        IlnEventType.LEAD_UNSUBSCRIBED,
        data,
        now,
        campaign_id=campaign_id,
    )


async def lead_mail_outcome(
    session: AsyncSession,
    lead: Lead,
    *,
    complaint: bool,
    data: dict[str, object],
    now: dt.datetime,
) -> None:
    """`lead.bounced` or `lead.complained`; ``data`` holds the outcome's fields."""
    campaign_id = await _campaign_of(session, lead.id)
    payload = MailOutcomeData.model_validate(
        {**data, "lead": lead_view(lead), "campaign_id": campaign_id}
    )
    event = IlnEventType.LEAD_COMPLAINED if complaint else IlnEventType.LEAD_BOUNCED
    await emit(session, lead.account_id, event, payload, now, campaign_id=campaign_id)


async def lead_converted(
    session: AsyncSession, lead: Lead, conversion: Conversion, now: dt.datetime
) -> None:
    campaign_id = conversion.campaign_id or await _campaign_of(session, lead.id)
    data = LeadConvertedData(
        lead=lead_view(lead),
        conversion=ConversionData(
            campaign_id=conversion.campaign_id,
            variant_id=conversion.variant_id,
            step=conversion.step,
            amount=format_money(conversion.amount, conversion.currency),
            currency=conversion.currency,
            converted_at=conversion.converted_at,
        ),
    )
    await emit(
        session, lead.account_id, IlnEventType.LEAD_CONVERTED, data, now, campaign_id=campaign_id
    )


def _followup(message: Message, error: str | None = None) -> FollowupData:
    return FollowupData(
        message_id=message.id,
        lead_id=message.lead_id,
        campaign_id=message.campaign_id,
        variant_id=message.variant_id,
        step=message.step,
        to=message.to_email,
        subject=message.subject,
        sent_at=message.sent_at,
        error=error,
    )


async def followup_sent(session: AsyncSession, message: Message, now: dt.datetime) -> None:
    await emit(
        session,
        message.account_id,
        IlnEventType.FOLLOWUP_SENT,
        _followup(message),
        now,
        campaign_id=message.campaign_id,
    )


async def followup_failed(
    session: AsyncSession, message: Message, error: str, now: dt.datetime
) -> None:
    await emit(
        session,
        message.account_id,
        IlnEventType.FOLLOWUP_FAILED,
        _followup(message, error),
        now,
        campaign_id=message.campaign_id,
    )


async def followups_completed(
    session: AsyncSession, enrollment: Enrollment, followups_sent: int, now: dt.datetime
) -> None:
    lead = await session.get_one(Lead, enrollment.lead_id)
    data = FollowupsCompletedData(
        lead=lead_view(lead),
        campaign_id=enrollment.campaign_id,
        variant_id=enrollment.variant_id,
        followups_sent=followups_sent,
    )
    await emit(
        session,
        enrollment.account_id,
        IlnEventType.LEAD_FOLLOWUPS_COMPLETED,
        data,
        now,
        campaign_id=enrollment.campaign_id,
    )


async def campaign_status_changed(
    session: AsyncSession, campaign: Campaign, now: dt.datetime
) -> None:
    event = (
        IlnEventType.CAMPAIGN_ACTIVATED
        if campaign.status == CampaignStatus.ACTIVE
        else IlnEventType.CAMPAIGN_DEACTIVATED
    )
    data = CampaignStatusData(campaign_id=campaign.id, name=campaign.name, status=campaign.status)
    await emit(session, campaign.account_id, event, data, now, campaign_id=campaign.id)


async def abtest_decided(session: AsyncSession, test: AbTest, now: dt.datetime) -> None:
    winner = await session.get(Variant, test.winner_variant_id) if test.winner_variant_id else None
    data = AbTestDecidedData(
        campaign_id=test.campaign_id,
        state="decided" if test.state == AbTestStatus.DECIDED else "inconclusive",
        winner_variant_id=test.winner_variant_id,
        winner_name=winner.name if winner else None,
        decided_at=test.decided_at or now,
        reason=test.reason or "",
    )
    await emit(
        session,
        test.account_id,
        IlnEventType.ABTEST_DECIDED,
        data,
        now,
        campaign_id=test.campaign_id,
    )
