"""Applying a verified, normalised platform delivery: one transaction, stored once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.config import Settings
from leadflow.domain import EventType
from leadflow.ingest.formats import Ignored, Normalized, PendingCheckout
from leadflow.ingest.formats.common import build_event
from leadflow.ingest.service import ingest_event, record_ignored, stored_result
from leadflow.integrations import shopify
from leadflow.integrations.schemas import Platform, WebhookResult
from leadflow.integrations.service import known_customer, learn_customer

EMAIL_UNKNOWN = "customer email unknown"


async def _lock_delivery(
    session: AsyncSession, account_id: str, source: str, external_id: str
) -> None:
    """Serialise concurrent deliveries of one id, so the second always sees the first's answer
    (PostgreSQL; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"delivery:{account_id}:{source}:{external_id}"},
        )


async def accept(
    session: AsyncSession,
    account: Account,
    platform: Platform,
    outcome: Normalized | Ignored | PendingCheckout,
    *,
    raw_body: str,
    now: dt.datetime,
    settings: Settings,
) -> WebhookResult:
    """Store the delivery as an event (deduplicated by the platform's id) and apply it."""
    source = platform.value
    await _lock_delivery(session, account.id, source, outcome.external_id)
    stored = await stored_result(session, account.id, source, outcome.external_id)
    if stored is not None:
        return WebhookResult.model_validate({**stored, "duplicate": True})
    if isinstance(outcome, PendingCheckout):
        return await shopify.record_checkout(
            session,
            account,
            outcome,
            raw_body=raw_body,
            now=now,
            abandon_after=dt.timedelta(minutes=settings.shopify_abandon_after_minutes),
        )
    if outcome.customer is not None:
        await learn_customer(session, account.id, source, outcome.customer, now)
    if isinstance(outcome, Ignored):
        return await _ignored(
            session,
            account,
            source,
            outcome.external_id,
            outcome.topic,
            raw_body,
            now,
            reason=outcome.reason,
            occurred_at=outcome.occurred_at,
            reference=outcome.reference,
            email=outcome.email,
        )

    fields = await _with_known_customer(session, account.id, source, outcome)
    email = fields["customer"]["email"]
    if platform is Platform.SHOPIFY and fields["type"] == EventType.ORDER_COMPLETED.value:
        await shopify.complete_checkouts(
            session, account.id, token=outcome.checkout_token, email=email, now=now
        )
    if email is None:
        return await _ignored(
            session,
            account,
            source,
            outcome.external_id,
            outcome.topic,
            raw_body,
            now,
            reason=EMAIL_UNKNOWN,
            occurred_at=dt.datetime.fromisoformat(fields["occurred_at"]),
            reference=fields["reference"],
        )
    result = await ingest_event(
        session,
        account,
        external_id=outcome.external_id,
        event=build_event(fields),
        raw_body=raw_body,
        now=now,
        attribution_window=dt.timedelta(days=settings.attribution_days),
        source=source,
    )
    return WebhookResult.model_validate(result.model_dump(mode="json"))


async def _with_known_customer(
    session: AsyncSession, account_id: str, source: str, outcome: Normalized
) -> dict[str, Any]:
    """The event's fields, with the email (and names) leadflow learned for its customer id
    when the delivery itself carries none (Stripe subscriptions)."""
    fields = outcome.event
    customer = fields["customer"]
    if customer["email"] is not None or outcome.customer is None:
        return fields
    known = await known_customer(session, account_id, source, outcome.customer.id)
    if known is None:
        return fields
    return {
        **fields,
        "customer": {
            **customer,
            "email": known.email,
            "first_name": customer["first_name"] or known.first_name,
            "last_name": customer["last_name"] or known.last_name,
        },
    }


async def _ignored(
    session: AsyncSession,
    account: Account,
    source: str,
    external_id: str,
    topic: str,
    raw_body: str,
    now: dt.datetime,
    **details: Any,
) -> WebhookResult:
    result = await record_ignored(
        session,
        account,
        source=source,
        external_id=external_id,
        type=topic,
        raw_body=raw_body,
        now=now,
        **details,
    )
    return WebhookResult.model_validate(result)
