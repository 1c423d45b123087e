"""Turning a verified event into stored facts: event, lead, conversions. One transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.campaigns.enrollment import enroll_new_lead
from leadflow.domain import LEAD_SOURCE_BY_EVENT, EventType, LeadStatus
from leadflow.ingest.models import Event
from leadflow.ingest.schemas import EventIn, IngestResult
from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.leads.conversions import credit_conversion
from leadflow.leads.models import Lead, LeadEvent
from leadflow.notifications import events

GENERIC_SOURCE = "generic"


async def _lock_contact(session: AsyncSession, account_id: str, email: str) -> None:
    """Serialise events about one contact, so a purchase and the cart it completes,
    arriving at the same instant, always see each other (PostgreSQL; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"{account_id}:{email}"},
        )


def _products_json(event: EventIn) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "name": p.name,
            "quantity": p.quantity,
            "unit_price": str(p.unit_price) if p.unit_price is not None else None,
        }
        for p in event.products
    ]


async def ingest_event(
    session: AsyncSession,
    account: Account,
    *,
    external_id: str,
    event: EventIn,
    raw_body: str,
    now: dt.datetime,
    attribution_window: dt.timedelta,
    source: str = GENERIC_SOURCE,
) -> IngestResult:
    """Store the event once and apply it. A repeated ``external_id`` returns the first result."""
    email = event.customer.email.lower()
    await _lock_contact(session, account.id, email)
    occurred_at = min(event.occurred_at.astimezone(dt.UTC), now)
    event_id = await record_event(
        session,
        account,
        source=source,
        external_id=external_id,
        type=event.type.value,
        raw_body=raw_body,
        now=now,
        occurred_at=occurred_at,
        reference=event.reference or email,
        email=email,
        amount=event.amount,
        currency=event.currency,
    )
    if event_id is None:
        stored = await stored_result(session, account.id, source, external_id)
        return IngestResult.model_validate({**(stored or {}), "duplicate": True})

    if event.type is EventType.ORDER_COMPLETED:
        purchase = await session.get_one(Event, event_id)
        converted = await _convert_open_leads(session, purchase, attribution_window, now)
        result = IngestResult(
            event_id=event_id, type=event.type, duplicate=False, converted_lead_ids=converted
        )
    else:
        lead, created = await _upsert_lead(
            session, account.id, event_id, event, email, occurred_at, now
        )
        if lead.status == LeadStatus.OPEN:
            await _convert_by_earlier_purchase(session, lead, attribution_window, now)
        campaign_id = None
        if created and lead.status == LeadStatus.OPEN:
            campaign_id = await enroll_new_lead(session, account, lead, now)
        if created:
            await events.lead_captured(session, lead, campaign_id, now)
        result = IngestResult(
            event_id=event_id,
            type=event.type,
            duplicate=False,
            lead_id=lead.id,
            lead_status=lead.status,
        )
    await session.execute(
        update(Event).where(Event.id == event_id).values(result=result.model_dump(mode="json"))
    )
    return result


async def record_event(
    session: AsyncSession,
    account: Account,
    *,
    source: str,
    external_id: str,
    type: str,
    raw_body: str,
    now: dt.datetime,
    occurred_at: dt.datetime | None = None,
    reference: str | None = None,
    email: str | None = None,
    amount: Decimal | None = None,
    currency: str | None = None,
    result: dict[str, Any] | None = None,
) -> str | None:
    """Store a delivery once per (account, source, external id), with ``{"event_id": …,
    **result}`` as its answer. Returns the new event id, or None when ``external_id`` was seen
    (a duplicate: nothing is written)."""
    event_id = new_id("evt")
    insert = insert_for(session)
    stmt = (
        insert(Event)
        .values(
            id=event_id,
            account_id=account.id,
            source=source,
            external_id=external_id,
            type=type[:64],
            occurred_at=min((occurred_at or now).astimezone(dt.UTC), now),
            received_at=now,
            reference=reference,
            email=email.lower() if email else None,
            amount=amount,
            currency=currency,
            raw_body=raw_body,
            result={"event_id": event_id, **(result or {})},
        )
        .on_conflict_do_nothing(index_elements=["account_id", "source", "external_id"])
        .returning(Event.id)
    )
    inserted: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return inserted


async def stored_result(
    session: AsyncSession, account_id: str, source: str, external_id: str
) -> dict[str, Any] | None:
    """The answer given to the first delivery of ``external_id``, if there was one."""
    stored: dict[str, Any] | None = (
        await session.execute(
            select(Event.result).where(
                Event.account_id == account_id,
                Event.source == source,
                Event.external_id == external_id,
            )
        )
    ).scalar_one_or_none()
    return stored


async def record_ignored(
    session: AsyncSession,
    account: Account,
    *,
    source: str,
    external_id: str,
    type: str,
    raw_body: str,
    now: dt.datetime,
    reason: str | None = None,
    occurred_at: dt.datetime | None = None,
    reference: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """Record a delivery leadflow does not act on, so a redelivery answers the same; returns
    ``{"event_id", "type", "ignored": true, "reason", "duplicate"}``."""
    event_id = await record_event(
        session,
        account,
        source=source,
        external_id=external_id,
        type=type,
        raw_body=raw_body,
        now=now,
        occurred_at=occurred_at,
        reference=reference,
        email=email,
        result={"type": type[:64], "ignored": True, "reason": reason},
    )
    stored = await stored_result(session, account.id, source, external_id)
    return {**(stored or {}), "duplicate": event_id is None}


async def _upsert_lead(
    session: AsyncSession,
    account_id: str,
    event_id: str,
    event: EventIn,
    email: str,
    occurred_at: dt.datetime,
    now: dt.datetime,
) -> tuple[Lead, bool]:
    source_type = LEAD_SOURCE_BY_EVENT[event.type].value
    reference = event.reference or email
    details: dict[str, Any] = {
        "email": email,
        "first_name": event.customer.first_name,
        "last_name": event.customer.last_name,
        "language": event.customer.language,
        "country": event.customer.country,
        "timezone": event.customer.timezone,
        "products": _products_json(event),
        "amount": event.amount,
        "currency": event.currency,
        "recovery_url": str(event.recovery_url) if event.recovery_url else None,
    }
    insert = insert_for(session)
    lead_id = new_id("lead")
    stmt = (
        insert(Lead)
        .values(
            id=lead_id,
            account_id=account_id,
            source_type=source_type,
            reference=reference,
            status=LeadStatus.OPEN.value,
            attributes=event.attributes,
            captured_at=occurred_at,
            last_event_at=occurred_at,
            created_at=now,
            updated_at=now,
            **details,
        )
        .on_conflict_do_nothing(index_elements=["account_id", "source_type", "reference"])
        .returning(Lead.id)
    )
    created = (await session.execute(stmt)).scalar_one_or_none() is not None
    lead = (
        await session.execute(
            select(Lead)
            .where(
                Lead.account_id == account_id,
                Lead.source_type == source_type,
                Lead.reference == reference,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if not created:
        if occurred_at >= lead.last_event_at:
            for field, value in details.items():
                if value is not None and value != []:
                    setattr(lead, field, value)
            lead.attributes = {**lead.attributes, **event.attributes}
            lead.last_event_at = occurred_at
        lead.captured_at = min(lead.captured_at, occurred_at)
        lead.updated_at = now
    session.add(
        LeadEvent(
            lead_id=lead.id,
            event_id=event_id,
            account_id=account_id,
            role="capture" if created else "update",
        )
    )
    await session.flush()
    return lead, created


async def _convert_by_earlier_purchase(
    session: AsyncSession, lead: Lead, window: dt.timedelta, now: dt.datetime
) -> None:
    """A purchase can arrive before the cart event it completes: look back for it."""
    purchase = (
        (
            await session.execute(
                select(Event)
                .where(
                    Event.account_id == lead.account_id,
                    Event.type == EventType.ORDER_COMPLETED.value,
                    or_(
                        # Same reference: the same checkout or subscription, but not an older
                        # billing cycle (a renewal lead must not be converted by last year's
                        # payment). The window tolerates platforms that date the event late.
                        and_(
                            Event.reference == lead.reference,
                            Event.occurred_at >= lead.captured_at - window,
                        ),
                        and_(
                            Event.email == lead.email,
                            Event.occurred_at >= lead.captured_at,
                            Event.occurred_at <= lead.captured_at + window,
                        ),
                    ),
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
    lead.status = LeadStatus.CONVERTED.value
    lead.converted_at = purchase.occurred_at
    lead.updated_at = now
    session.add(
        LeadEvent(
            lead_id=lead.id, event_id=purchase.id, account_id=lead.account_id, role="conversion"
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


async def _convert_open_leads(
    session: AsyncSession, purchase: Event, window: dt.timedelta, now: dt.datetime
) -> list[str]:
    email, occurred_at = purchase.email, purchase.occurred_at
    match_email = and_(
        Lead.email == email,
        Lead.captured_at <= occurred_at,
        Lead.captured_at >= occurred_at - window,
    )
    match_reference = and_(
        Lead.reference == purchase.reference, Lead.captured_at <= occurred_at + window
    )
    condition = or_(match_reference, match_email)
    leads = (
        (
            await session.execute(
                select(Lead)
                .where(
                    Lead.account_id == purchase.account_id,
                    Lead.status == LeadStatus.OPEN.value,
                    condition,
                )
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
