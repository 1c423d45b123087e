"""Converting leads: a purchase stops the lead's follow-ups and is credited to the step that
earned it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from itertools import zip_longest

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.service import evaluate as evaluate_ab_test
from leadflow.kit.db import ROWS_PER_STATEMENT, chunks, insert_for
from leadflow.kit.ids import new_id
from leadflow.kit.metrics import LEAD_STATUS_CHANGES, count_after_commit
from leadflow.lifecycle.attribution import completes, leads_completed_by
from leadflow.lifecycle.sequence import stop_active
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.events import Event
from leadflow.models.leads import Conversion, Lead, LeadEvent
from leadflow.notifications import events
from leadflow.stats.service import bump
from leadflow.vocabulary import MAYBE_SENT, EventType, LeadEventRole, LeadStatus, StopReason


async def convert_by_purchases(
    session: AsyncSession, purchase_ids: Sequence[str], window: dt.timedelta, now: dt.datetime
) -> dict[str, list[str]]:
    """New purchases arrived: each converts every open lead it completes. Returns the
    converted lead ids per purchase id."""
    converted: dict[str, list[str]] = {purchase_id: [] for purchase_id in purchase_ids}
    if not purchase_ids:
        return converted
    purchases = await session.scalars(
        select(Event).where(Event.id.in_(purchase_ids)).order_by(Event.occurred_at, Event.id)
    )
    for purchase in purchases.all():
        converted[purchase.id] = await convert_open_leads(session, purchase, window, now)
    return converted


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


async def convert_by_earlier_purchases(
    session: AsyncSession, leads: Sequence[Lead], window: dt.timedelta, now: dt.datetime
) -> None:
    """A purchase can arrive before the cart event it completes: look back for one, for many
    open leads of one account in one query (candidates by reference or email, the window
    checked here)."""
    if not leads:
        return
    account_id = leads[0].account_id
    references = sorted({lead.reference for lead in leads})
    emails = sorted({lead.email for lead in leads})
    candidates: list[Event] = []
    for refs, mails in zip_longest(
        chunks(references, ROWS_PER_STATEMENT), chunks(emails, ROWS_PER_STATEMENT)
    ):
        found = await session.scalars(
            select(Event)
            .where(
                Event.account_id == account_id,
                Event.type == EventType.ORDER_COMPLETED.value,
                or_(Event.reference.in_(refs or ()), Event.email.in_(mails or ())),
            )
            .order_by(Event.occurred_at, Event.id)
        )
        candidates.extend(found)
    candidates.sort(key=lambda event: (event.occurred_at, event.id))
    for lead in leads:
        purchase = next(
            (
                event
                for event in candidates
                if completes(
                    event,
                    reference=lead.reference,
                    email=lead.email,
                    captured_at=lead.captured_at,
                    window=window,
                )
            ),
            None,
        )
        if purchase is not None:
            await _convert(session, lead, purchase, window, now)


async def _convert(
    session: AsyncSession, lead: Lead, purchase: Event, window: dt.timedelta, now: dt.datetime
) -> None:
    count_after_commit(session, LEAD_STATUS_CHANGES.labels(lead.status, LeadStatus.CONVERTED))
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
