"""Shopify checkouts: watched while pending, completed by orders, abandoned by a worker.

Shopify has no "checkout abandoned" webhook. ``checkouts/create|update`` are kept as pending
checkouts; once ``abandon_at`` (the checkout's last update + the abandonment delay) passes
without an order, the worker turns each into a ``checkout.abandoned`` lead through
``ingest_event`` (source ``shopify``, external id ``abandoned:{token}``), one checkout per
transaction. Several workers share the work: a due row is locked with ``FOR UPDATE SKIP
LOCKED`` (PostgreSQL) and claimed by a conditional ``pending -> abandoned`` update.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ingest.schemas import EventIn
from leadflow.ingest.service import ingest_event, record_answer, record_event, stored_result
from leadflow.integrations.formats import PendingCheckout
from leadflow.integrations.formats.common import build_event, event_fields
from leadflow.integrations.schemas import PendingCheckoutOut, Platform, WebhookResult
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database, insert_for
from leadflow.kit.ids import new_id
from leadflow.kit.leases import claim_due
from leadflow.lifecycle.attribution import purchases_completing
from leadflow.models.accounts import Account
from leadflow.models.events import Event
from leadflow.models.integrations import ShopifyCheckout
from leadflow.vocabulary import CheckoutStatus, EventType

log = logging.getLogger("leadflow.integrations.shopify")

SOURCE = Platform.SHOPIFY.value
PENDING, ABANDONED, COMPLETED = (
    CheckoutStatus.PENDING,
    CheckoutStatus.ABANDONED,
    CheckoutStatus.COMPLETED,
)


def abandoned_external_id(token: str) -> str:
    return f"abandoned:{token}"


async def record_checkout(
    session: AsyncSession,
    account: Account,
    checkout: PendingCheckout,
    *,
    raw_body: str,
    now: dt.datetime,
    abandon_after: dt.timedelta,
) -> WebhookResult:
    """Store the ``checkouts/*`` delivery and watch its checkout (newer versions win)."""
    event_id = await record_event(
        session,
        account,
        source=SOURCE,
        external_id=checkout.external_id,
        type=checkout.topic,
        raw_body=raw_body,
        now=now,
        occurred_at=checkout.updated_at,
        reference=checkout.token,
        email=checkout.email,
    )
    if event_id is None:
        stored = await stored_result(session, account.id, SOURCE, checkout.external_id)
        return WebhookResult.model_validate({**(stored or {}), "duplicate": True})
    row = await _upsert(session, account.id, checkout, now, abandon_after)
    result = WebhookResult(
        event_id=event_id,
        type=checkout.topic,
        duplicate=False,
        checkout=PendingCheckoutOut(token=row.token, status=row.status, abandon_at=row.abandon_at),
    )
    await record_answer(session, event_id, result.model_dump(mode="json", exclude={"duplicate"}))
    return result


async def _upsert(
    session: AsyncSession,
    account_id: str,
    checkout: PendingCheckout,
    now: dt.datetime,
    abandon_after: dt.timedelta,
) -> ShopifyCheckout:
    values: dict[str, Any] = {
        "email": checkout.email.lower() if checkout.email else None,
        "first_name": checkout.first_name,
        "last_name": checkout.last_name,
        "line_items": checkout.products,
        "total_price": checkout.amount,
        "currency": checkout.currency,
        "abandoned_checkout_url": checkout.recovery_url,
        "customer_locale": checkout.language,
        "billing_country_code": checkout.billing_country,
        "shipping_country_code": checkout.shipping_country,
        "checkout_updated_at": checkout.updated_at,
        "abandon_at": checkout.updated_at + abandon_after,
        "updated_at": now,
    }
    insert = insert_for(session)
    created = (
        await session.execute(
            insert(ShopifyCheckout)
            .values(
                id=new_id("chk"),
                account_id=account_id,
                token=checkout.token,
                status=PENDING,
                started_at=checkout.started_at,
                created_at=now,
                **values,
            )
            .on_conflict_do_nothing(index_elements=["account_id", "token"])
            .returning(ShopifyCheckout.id)
        )
    ).scalar_one_or_none() is not None
    row = (
        await session.execute(
            select(ShopifyCheckout)
            .where(
                ShopifyCheckout.account_id == account_id, ShopifyCheckout.token == checkout.token
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if not created and checkout.updated_at >= row.checkout_updated_at:
        # A newer version of the checkout; keep what it leaves out (an email typed earlier).
        for key in ("email", "first_name", "last_name"):
            values[key] = values[key] or getattr(row, key)
        for key, value in values.items():
            setattr(row, key, value)
        row.started_at = min(row.started_at, checkout.started_at)
    attributes = {k: v for k, v in checkout.attributes.items() if v is not None}
    row.event = _abandoned_event(row, attributes)
    if row.status == PENDING and (
        checkout.completed
        or await order_exists(session, account_id, row.token, row.email, row.started_at)
    ):
        row.status, row.completed_at = COMPLETED, now
    await session.flush()
    return row


def _abandoned_event(row: ShopifyCheckout, attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The ``checkout.abandoned`` event the worker will ingest; None without an email."""
    if row.email is None:
        return None
    fields = event_fields(
        type=EventType.CHECKOUT_ABANDONED.value,
        occurred_at=row.abandon_at,
        reference=row.token,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        language=row.customer_locale,
        country=row.billing_country_code or row.shipping_country_code,
        products=list(row.line_items),
        amount=row.total_price,
        currency=row.currency,
        recovery_url=row.abandoned_checkout_url,
        attributes=attributes,
    )
    return build_event(fields).model_dump(mode="json")


async def order_exists(
    session: AsyncSession,
    account_id: str,
    token: str,
    email: str | None,
    since: dt.datetime,
) -> bool:
    """A purchase completed this checkout (same token), or the same customer bought after
    starting it."""
    completing = purchases_completing(
        account_id=account_id, reference=token, email=email, captured_at=since, window=None
    )
    found = (await session.execute(select(Event.id).where(completing).limit(1))).first()
    return found is not None


async def complete_checkouts(
    session: AsyncSession,
    account_id: str,
    *,
    token: str | None,
    email: str | None,
    now: dt.datetime,
) -> None:
    """An order arrived: its checkout (by token, else the customer's by email) is never
    abandoned. Runs before the order's lead work, so checkouts are locked before contacts,
    in the same order as the abandonment worker."""
    pending = and_(ShopifyCheckout.account_id == account_id, ShopifyCheckout.status == PENDING)
    done = {"status": COMPLETED, "completed_at": now, "updated_at": now}
    if token is not None:
        known = (
            await session.execute(
                select(ShopifyCheckout.id).where(
                    ShopifyCheckout.account_id == account_id, ShopifyCheckout.token == token
                )
            )
        ).scalar_one_or_none()
        if known is not None:
            await session.execute(
                update(ShopifyCheckout).where(pending, ShopifyCheckout.id == known).values(**done)
            )
            return
    if email is not None:
        await session.execute(
            update(ShopifyCheckout)
            .where(pending, ShopifyCheckout.email == email.lower())
            .values(**done)
        )


@dataclass
class AbandonReport:
    abandoned: int = 0
    completed: int = 0
    failed: int = 0


async def abandon_due_checkouts(
    db: Database,
    clock: Clock,
    attribution_window: dt.timedelta,
    *,
    limit: int = 1000,
    stopping: Callable[[], bool] = lambda: False,
) -> AbandonReport:
    """One worker tick: turn up to ``limit`` due pending checkouts into abandoned-checkout
    leads, each in its own transaction."""
    report = AbandonReport()
    failed: set[str] = set()
    current: list[str] = []
    now = clock.now()
    due = (ShopifyCheckout.status == PENDING, ShopifyCheckout.abandon_at <= now)

    async def work(session: AsyncSession) -> str | None:
        candidates = (
            select(ShopifyCheckout.id)
            .where(*due, ShopifyCheckout.email.is_not(None))
            .order_by(ShopifyCheckout.abandon_at, ShopifyCheckout.id)
            .limit(1)
        )
        if failed:
            candidates = candidates.where(ShopifyCheckout.id.not_in(failed))
        # The claim is the pending -> abandoned update itself; an update of the checkout may
        # have pushed its abandon_at back meanwhile.
        claimed = await claim_due(
            session,
            candidates,
            model=ShopifyCheckout,
            still_due=due,
            claim={"status": ABANDONED, "abandoned_at": now, "updated_at": now},
        )
        if not claimed:
            return None  # nothing due, or another worker took it: this tick is done
        current[:] = [claimed[0].id]
        row = await session.get_one(ShopifyCheckout, claimed[0].id)
        return await _abandon(session, row, now, attribution_window)

    for _ in range(limit):
        if stopping():  # shutting down: the next tick (of any worker) takes the rest
            break
        try:
            outcome = await db.transaction(work)
        except Exception:
            log.exception("abandoning Shopify checkout %s failed", current)
            failed.update(current)
            report.failed += 1
            continue
        if outcome is None:
            break
        if outcome == ABANDONED:
            report.abandoned += 1
        elif outcome == COMPLETED:
            report.completed += 1
    return report


async def _abandon(
    session: AsyncSession, row: ShopifyCheckout, now: dt.datetime, window: dt.timedelta
) -> str:
    if row.event is None or await order_exists(
        session, row.account_id, row.token, row.email, row.started_at
    ):
        await session.execute(
            update(ShopifyCheckout)
            .where(ShopifyCheckout.id == row.id)
            .values(status=COMPLETED, abandoned_at=None, completed_at=now)
        )
        return COMPLETED
    account = await session.get_one(Account, row.account_id)
    event = EventIn.model_validate(row.event)
    result = await ingest_event(
        session,
        account,
        external_id=abandoned_external_id(row.token),
        event=event,
        raw_body=json.dumps(row.event, separators=(",", ":"), ensure_ascii=False),
        now=now,
        attribution_window=window,
        source=SOURCE,
    )
    await session.execute(
        update(ShopifyCheckout).where(ShopifyCheckout.id == row.id).values(lead_id=result.lead_id)
    )
    return ABANDONED
