"""Applying a verified, normalised platform delivery: one transaction, stored once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.ingest.intake import SignedDelivery
from leadflow.ingest.service import ingest_event, record_ignored, stored_result
from leadflow.integrations import shopify
from leadflow.integrations.errors import IntegrationNotConfigured
from leadflow.integrations.formats import (
    Credentials,
    Ignored,
    Normalized,
    Outcome,
    PendingCheckout,
    Ping,
    paypro,
    stripe,
    woocommerce,
)
from leadflow.integrations.formats import shopify as shopify_format
from leadflow.integrations.formats.common import build_event
from leadflow.integrations.schemas import Platform, WebhookResult
from leadflow.integrations.service import known_customer, learn_customer
from leadflow.kit.db import Database
from leadflow.kit.errors import not_found
from leadflow.kit.locking import lock_key
from leadflow.models.accounts import Account
from leadflow.models.integrations import Integration
from leadflow.vocabulary import EventType

EMAIL_UNKNOWN = "customer email unknown"


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
    # Concurrent deliveries of one id: the second always sees the first's answer.
    await lock_key(session, f"delivery:{account.id}:{source}:{outcome.external_id}")
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


Reader = Callable[..., Outcome]
READERS: dict[Platform, Reader] = {
    Platform.STRIPE: stripe.read,
    Platform.SHOPIFY: shopify_format.read,
    Platform.WOOCOMMERCE: woocommerce.read,
    Platform.PAYPRO: paypro.read,
}


async def receive(
    db: Database,
    platform: Platform,
    delivery: SignedDelivery,
    settings: Settings,
    now: dt.datetime,
) -> WebhookResult:
    """A platform's webhook: authenticate it with the account's credentials for the platform,
    map it, then store and apply it in one transaction (retried on deadlock)."""
    account_id = delivery.account_id
    async with db.session() as session:
        account = await session.get(Account, account_id)
        integration = (
            await session.get(Integration, (account_id, platform.value)) if account else None
        )
    if account is None:
        raise not_found("account")
    body = await delivery.read_body(settings.max_body_bytes)
    headers = delivery.headers
    if platform is Platform.WOOCOMMERCE:
        ping: Ping | None = woocommerce.ping(headers, body)
        if ping is not None:
            return WebhookResult(
                event_id=None,
                type="ping",
                duplicate=False,
                ignored=True,
                reason=f"WooCommerce activation ping for webhook {ping.webhook_id}",
            )
    if integration is None:
        raise IntegrationNotConfigured(platform)
    outcome = READERS[platform](
        headers,
        body,
        Credentials(integration.secret, integration.validation_key),
        now=now,
        tolerance=dt.timedelta(seconds=settings.webhook_tolerance_seconds),
    )
    assert not isinstance(outcome, Ping)
    raw_body = body.decode("utf-8")  # every adapter has parsed it as UTF-8 by now

    async def work(session: AsyncSession) -> WebhookResult:
        return await accept(
            session, account, platform, outcome, raw_body=raw_body, now=now, settings=settings
        )

    return await db.transaction(work)
