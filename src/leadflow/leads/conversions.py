"""Crediting a purchase: stop the lead's follow-ups and credit the step that earned it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.service import evaluate as evaluate_ab_test
from leadflow.dispatch.models import Enrollment, Message
from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.leads.models import Conversion, Lead
from leadflow.stats.service import bump

SENT_STATUSES = ("sent", "unknown")


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
    await session.execute(
        update(Enrollment)
        .where(Enrollment.lead_id == lead.id, Enrollment.state == "active")
        .values(
            state="stopped",
            stop_reason="converted",
            lease_until=None,
            lease_token=None,
            updated_at=now,
        )
    )
    message = (
        await session.execute(
            select(Message)
            .where(
                Message.lead_id == lead.id,
                Message.status.in_(SENT_STATUSES),
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
