"""The event store: every accepted delivery stored once, answered the same when repeated, and
handed to the lead lifecycle. One transaction."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ingest.schemas import EventIn, IngestResult
from leadflow.kit.db import ROWS_PER_STATEMENT, chunks, insert_for, table
from leadflow.kit.ids import new_id
from leadflow.kit.locking import lock_keys
from leadflow.kit.metrics import EVENTS_INGESTED, count_after_commit
from leadflow.lifecycle.capture import LeadFacts, settle_new_leads, upsert_leads
from leadflow.lifecycle.conversions import convert_by_purchases
from leadflow.models.accounts import Account
from leadflow.models.events import Event
from leadflow.vocabulary import LEAD_SOURCE_BY_EVENT, EventType

GENERIC_SOURCE = "generic"
_EVENT_TYPES = frozenset(t.value for t in EventType)


def type_label(item: Any) -> str:
    """An event's type as a metric label: leadflow's types, else ``other`` (never free text)."""
    kind = item.get("type") if isinstance(item, dict) else item
    return kind if kind in _EVENT_TYPES else "other"


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


@dataclass(frozen=True)
class Delivery:
    """One event to ingest: its idempotency key, the parsed event and its stored body."""

    external_id: str
    event: EventIn
    raw_body: str


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
    (result,) = await ingest_events(
        session,
        account,
        [Delivery(external_id, event, raw_body)],
        now=now,
        attribution_window=attribution_window,
        source=source,
    )
    return result


async def ingest_events(
    session: AsyncSession,
    account: Account,
    deliveries: Sequence[Delivery],
    *,
    now: dt.datetime,
    attribution_window: dt.timedelta,
    source: str = GENERIC_SOURCE,
) -> list[IngestResult]:
    """Store and apply many events set-based, a few statements per table whatever their
    number; one result per delivery, in order. An ``external_id`` seen before (or earlier in
    ``deliveries``) answers the first result with ``duplicate: true`` and writes nothing."""
    emails = [d.event.customer.email.lower() for d in deliveries]
    occurred = [min(d.event.occurred_at.astimezone(dt.UTC), now) for d in deliveries]
    # Serialise events about one contact, so a purchase and the cart it completes, arriving
    # at the same instant in two requests, always see each other.
    await lock_keys(session, [f"{account.id}:{email}" for email in emails])
    first_of: dict[str, int] = {}
    rows = []
    for index, (delivery, email) in enumerate(zip(deliveries, emails, strict=True)):
        if delivery.external_id in first_of:
            continue
        first_of[delivery.external_id] = index
        event = delivery.event
        rows.append(
            _event_row(
                account.id,
                source=source,
                external_id=delivery.external_id,
                type=event.type.value,
                raw_body=delivery.raw_body,
                now=now,
                occurred_at=occurred[index],
                reference=event.reference or email,
                email=email,
                amount=event.amount,
                currency=event.currency,
            )
        )
    stored = await _insert_events(session, rows)
    new = [i for i in first_of.values() if deliveries[i].external_id in stored]
    event_ids = {i: stored[deliveries[i].external_id] for i in new}

    captures = [i for i in new if deliveries[i].event.type is not EventType.ORDER_COMPLETED]
    leads = await upsert_leads(
        session,
        account.id,
        [(event_ids[i], lead_facts(deliveries[i].event, emails[i], occurred[i])) for i in captures],
        now,
    )
    purchases = [i for i in new if deliveries[i].event.type is EventType.ORDER_COMPLETED]
    converted = await convert_by_purchases(
        session, [event_ids[i] for i in purchases], attribution_window, now
    )
    await settle_new_leads(session, account, leads, attribution_window, now)

    answers: dict[int, IngestResult] = {}
    for i in purchases:
        answers[i] = IngestResult(
            event_id=event_ids[i],
            type=EventType.ORDER_COMPLETED,
            duplicate=False,
            converted_lead_ids=converted[event_ids[i]],
        )
    for i, (lead, _created) in zip(captures, leads, strict=True):
        answers[i] = IngestResult(
            event_id=event_ids[i],
            type=deliveries[i].event.type,
            duplicate=False,
            lead_id=lead.id,
            lead_status=lead.status,
        )
    if answers:
        await session.execute(
            update(table(Event))
            .where(table(Event).c.id == bindparam("event_id"))
            .values(result=bindparam("answer")),
            [
                {"event_id": answer.event_id, "answer": answer.model_dump(mode="json")}
                for answer in answers.values()
            ],
        )
    seen = await stored_results(
        session,
        account.id,
        source,
        [d.external_id for i, d in enumerate(deliveries) if i not in answers],
    )
    counts = Counter(
        (d.event.type.value, "accepted" if i in answers else "duplicate")
        for i, d in enumerate(deliveries)
    )
    for (kind, result), n in counts.items():
        count_after_commit(session, EVENTS_INGESTED.labels(source, kind, result), n)
    return [
        answers[i]
        if i in answers
        else IngestResult.model_validate({**seen.get(d.external_id, {}), "duplicate": True})
        for i, d in enumerate(deliveries)
    ]


async def record_answer(session: AsyncSession, event_id: str, answer: dict[str, Any]) -> None:
    """Keep the answer given to an event's first delivery, for its redeliveries."""
    await session.execute(update(Event).where(Event.id == event_id).values(result=answer))


class EventFields(TypedDict):
    """What is stored of one delivery (besides its account)."""

    source: str
    external_id: str
    type: str
    raw_body: str
    now: dt.datetime
    occurred_at: NotRequired[dt.datetime | None]
    reference: NotRequired[str | None]
    email: NotRequired[str | None]
    amount: NotRequired[Decimal | None]
    currency: NotRequired[str | None]
    result: NotRequired[dict[str, Any] | None]


async def record_event(
    session: AsyncSession, account: Account, **fields: Unpack[EventFields]
) -> str | None:
    """Store a delivery once per (account, source, external id), with ``{"event_id": …,
    **result}`` as its answer. Returns the new event id, or None when ``external_id`` was seen
    (a duplicate: nothing is written)."""
    row = _event_row(account.id, **fields)
    return (await _insert_events(session, [row])).get(fields["external_id"])


def _event_row(account_id: str, **fields: Unpack[EventFields]) -> dict[str, Any]:
    event_id = new_id("evt")
    now = fields["now"]
    email = fields.get("email")
    return {
        "id": event_id,
        "account_id": account_id,
        "source": fields["source"],
        "external_id": fields["external_id"],
        "type": fields["type"][:64],
        "occurred_at": min((fields.get("occurred_at") or now).astimezone(dt.UTC), now),
        "received_at": now,
        "reference": fields.get("reference"),
        "email": email.lower() if email else None,
        "amount": fields.get("amount"),
        "currency": fields.get("currency"),
        "raw_body": fields["raw_body"],
        "result": {"event_id": event_id, **(fields.get("result") or {})},
    }


async def _insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Insert the rows whose external id is new; returns ``{external_id: event_id}`` of
    those."""
    inserted: dict[str, str] = {}
    insert = insert_for(session)
    if rows:
        stmt = (
            insert(table(Event))
            .on_conflict_do_nothing(index_elements=["account_id", "source", "external_id"])
            .returning(table(Event).c.external_id, table(Event).c.id)
        )
        # A list of parameter sets: SQLAlchemy sends them as multi-row VALUES pages
        # ("insertmanyvalues"), rendered once instead of compiled per row; Core, not the
        # ORM's bulk insert, as nothing here needs an ORM object.
        found = await session.execute(stmt, rows)
        inserted.update((external_id, id_) for external_id, id_ in found)
    return inserted


async def stored_results(
    session: AsyncSession, account_id: str, source: str, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The answers given to the first deliveries of ``external_ids``, where there were some."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(sorted(set(external_ids)), ROWS_PER_STATEMENT):
        rows = await session.execute(
            select(Event.external_id, Event.result).where(
                Event.account_id == account_id,
                Event.source == source,
                Event.external_id.in_(chunk),
            )
        )
        out.update((external_id, result) for external_id, result in rows)
    return out


async def stored_result(
    session: AsyncSession, account_id: str, source: str, external_id: str
) -> dict[str, Any] | None:
    """The answer given to the first delivery of ``external_id``, if there was one."""
    return (await stored_results(session, account_id, source, [external_id])).get(external_id)


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
    outcome = "ignored" if event_id is not None else "duplicate"
    count_after_commit(session, EVENTS_INGESTED.labels(source, type_label(type), outcome))
    stored = await stored_result(session, account.id, source, external_id)
    return {**(stored or {}), "duplicate": event_id is None}
