"""Converting leads: a purchase stops the lead's follow-ups and is credited to the step that
earned it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.service import evaluate as evaluate_ab_test
from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.lifecycle.attribution import leads_completed_by, purchases_completing
from leadflow.lifecycle.sequence import stop_active
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.events import Event
from leadflow.models.leads import Conversion, Lead, LeadEvent
from leadflow.notifications import events
from leadflow.stats.service import bump
from leadflow.vocabulary import MAYBE_SENT, LeadEventRole, LeadStatus, StopReason


async def convert_open_leads(
    session: AsyncSession, purchase: Event, window: dt.timedelta, now: dt.datetime
) -> list[str]:
    """A purchase arrived: convert every open lead it completes; returns their ids."""
    leads = (
        (
            await session.execute(
                select(Lead)
                .where(Lead.status == LeadStatus.OPEN.value, leads_completed_by(purchase, window))
                .order_by(Lead.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for lead in leads:
        await _convert(session, lead, purchase, window, now)
    return [lead.id for lead in leads]


async def convert_by_earlier_purchase(
    session: AsyncSession, lead: Lead, window: dt.timedelta, now: dt.datetime
) -> None:
    """A purchase can arrive before the cart event it completes: look back for it."""
    purchase = (
        (
            await session.execute(
                select(Event)
                .where(
                    purchases_completing(
                        account_id=lead.account_id,
                        reference=lead.reference,
                        email=lead.email,
                        captured_at=lead.captured_at,
                        window=window,
                    )
                )
                .order_by(Event.occurred_at)
                .limit(1)
            )
        )
        .scalars()
        .first()
    )
    if purchase is not None:
        await _convert(session, lead, purchase, window, now)


async def _convert(
    session: AsyncSession, lead: Lead, purchase: Event, window: dt.timedelta, now: dt.datetime
) -> None:
    lead.status = LeadStatus.CONVERTED
    lead.converted_at = purchase.occurred_at
    lead.updated_at = now
    session.add(
        LeadEvent(
            lead_id=lead.id,
            event_id=purchase.id,
            account_id=lead.account_id,
            role=LeadEventRole.CONVERSION,
        )
    )
    await session.flush()
    conversion = await credit_conversion(
        session,
        lead,
        event_id=purchase.id,
        amount=purchase.amount,
        currency=purchase.currency,
        converted_at=purchase.occurred_at,
        window=window,
        now=now,
    )
    await events.lead_converted(session, lead, conversion, now)


async def credit_conversion(
    session: AsyncSession,
    lead: Lead,
    *,
    event_id: str,
    amount: Decimal | None,
    currency: str | None,
    converted_at: dt.datetime,
    window: dt.timedelta,
    now: dt.datetime,
) -> Conversion:
    """Stop the lead's sequence and record the conversion (once per lead); returns it."""
    await stop_active(session, StopReason.CONVERTED, now, Enrollment.lead_id == lead.id)
    message = (
        await session.execute(
            select(Message)
            .where(
                Message.lead_id == lead.id,
                Message.status.in_(MAYBE_SENT),
                Message.sent_at <= converted_at,
                Message.sent_at >= converted_at - window,
            )
            .order_by(Message.sent_at.desc(), Message.step.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if amount is None:
        amount, currency = lead.amount, lead.currency
    insert = insert_for(session)
    inserted = await session.execute(
        insert(Conversion)
        .values(
            id=new_id("cnv"),
            account_id=lead.account_id,
            lead_id=lead.id,
            event_id=event_id,
            campaign_id=message.campaign_id if message else None,
            variant_id=message.variant_id if message else None,
            message_id=message.id if message else None,
            step=message.step if message else None,
            amount=amount,
            currency=currency,
            converted_at=converted_at,
        )
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .returning(Conversion.id)
    )
    if inserted.scalar_one_or_none() is not None and message is not None:
        await bump(
            session,
            account_id=lead.account_id,
            campaign_id=message.campaign_id,
            variant_id=message.variant_id,
            step=message.step,
            when=converted_at,
            conversions=1,
            revenue=amount if currency else None,
            currency=currency,
        )
        # A conversion can be what decides the campaign's A/B test.
        await evaluate_ab_test(session, message.campaign_id, now)
    return (
        await session.execute(select(Conversion).where(Conversion.lead_id == lead.id))
    ).scalar_one()
