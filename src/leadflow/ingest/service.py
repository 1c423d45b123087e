"""The event store: every accepted delivery stored once, answered the same when repeated, and
handed to the lead lifecycle. One transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ingest.schemas import EventIn, IngestResult
from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.kit.locking import lock_key
from leadflow.lifecycle.capture import LeadFacts, capture_lead
from leadflow.lifecycle.conversions import convert_open_leads
from leadflow.models.accounts import Account
from leadflow.models.events import Event
from leadflow.vocabulary import LEAD_SOURCE_BY_EVENT, EventType

GENERIC_SOURCE = "generic"


def lead_facts(event: EventIn, email: str, occurred_at: dt.datetime) -> LeadFacts:
    """What a lead event tells about its lead."""
    return LeadFacts(
        source_type=LEAD_SOURCE_BY_EVENT[event.type],
        reference=event.reference or email,
        email=email,
        occurred_at=occurred_at,
        first_name=event.customer.first_name,
        last_name=event.customer.last_name,
        language=event.customer.language,
        country=event.customer.country,
        timezone=event.customer.timezone,
        products=[
            {
                "id": p.id,
                "name": p.name,
                "quantity": p.quantity,
                "unit_price": str(p.unit_price) if p.unit_price is not None else None,
            }
            for p in event.products
        ],
        amount=event.amount,
        currency=event.currency,
        recovery_url=str(event.recovery_url) if event.recovery_url else None,
        attributes=event.attributes,
    )


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
    # Serialise events about one contact, so a purchase and the cart it completes, arriving
    # at the same instant, always see each other.
    await lock_key(session, f"{account.id}:{email}")
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
        converted = await convert_open_leads(session, purchase, attribution_window, now)
        result = IngestResult(
            event_id=event_id, type=event.type, duplicate=False, converted_lead_ids=converted
        )
    else:
        facts = lead_facts(event, email, occurred_at)
        lead = await capture_lead(
            session, account, event_id, facts, attribution_window=attribution_window, now=now
        )
        result = IngestResult(
            event_id=event_id,
            type=event.type,
            duplicate=False,
            lead_id=lead.id,
            lead_status=lead.status,
        )
    await record_answer(session, event_id, result.model_dump(mode="json"))
    return result


async def record_answer(session: AsyncSession, event_id: str, answer: dict[str, Any]) -> None:
    """Keep the answer given to an event's first delivery, for its redeliveries."""
    await session.execute(update(Event).where(Event.id == event_id).values(result=answer))


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
