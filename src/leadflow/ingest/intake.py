"""Webhook intake: authenticate a signed delivery, validate it, and store and apply it in one
transaction (retried on deadlock, so the request cannot own it: a handler cannot be re-run)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.service import webhook_secrets
from leadflow.config import Settings
from leadflow.ingest.coalesce import EventQueue
from leadflow.ingest.schemas import (
    BatchEventIn,
    BatchItemError,
    BatchItemResult,
    BatchResult,
    EventBatchIn,
    EventIn,
    IngestResult,
)
from leadflow.ingest.service import GENERIC_SOURCE, Delivery, ingest_events, type_label
from leadflow.ingest.verify import parse_json, verify_standard_webhook
from leadflow.kit import logs
from leadflow.kit.db import Database
from leadflow.kit.errors import (
    AppError,
    field_error,
    not_found,
    problems_from_validation,
    validation_error,
)
from leadflow.kit.metrics import EVENTS_INGESTED
from leadflow.models.accounts import Account

BodyReader = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True)
class SignedDelivery:
    """An inbound request as intake needs it: its headers, and its body still unread (it is
    read, with a size limit, only once the account is known)."""

    account_id: str
    headers: Mapping[str, str]
    read_body: BodyReader


class AccountCache:
    """Accounts as webhook intake needs them (secrets, delays), kept ``ttl`` seconds per
    process: a burst of webhooks reads its account once, not once per request (a pooled
    connection each). Concurrent misses share one read. A change made through this process's
    API is seen at once (``forget``); one made elsewhere within ``ttl``."""

    MAX_ENTRIES = 10_000

    def __init__(self, db: Database, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Account]] = {}
        self._reading: dict[str, asyncio.Future[Account | None]] = {}

    async def get(self, account_id: str) -> Account | None:
        entry = self._entries.get(account_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        reading = self._reading.get(account_id)
        if reading is not None:
            return await asyncio.shield(reading)
        reading = asyncio.get_running_loop().create_future()
        self._reading[account_id] = reading
        try:
            async with self._db.reader() as session:
                account = await session.get(Account, account_id)
        except BaseException as exc:
            reading.set_exception(exc)
            reading.exception()  # those who waited have it; nobody else must
            raise
        finally:
            del self._reading[account_id]
        reading.set_result(account)
        if account is not None and self._ttl > 0:  # unknown ids are not kept
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[account_id] = (time.monotonic() + self._ttl, account)
        return account

    def forget(self, account_id: str) -> None:
        self._entries.pop(account_id, None)


async def _authenticated_body(
    accounts: AccountCache, delivery: SignedDelivery, settings: Settings, now: dt.datetime
) -> tuple[Account, bytes]:
    account = await accounts.get(delivery.account_id)
    if account is None:
        raise not_found("account")
    logs.bind(account_id=account.id)  # on the request's log lines from here on
    try:
        body = await delivery.read_body(settings.max_body_bytes)
        verify_standard_webhook(
            secrets=webhook_secrets(account, now),
            msg_id=delivery.headers.get("webhook-id"),
            timestamp=delivery.headers.get("webhook-timestamp"),
            signature=delivery.headers.get("webhook-signature"),
            body=body,
            now=now,
            tolerance=dt.timedelta(seconds=settings.webhook_tolerance_seconds),
        )
    except AppError:
        EVENTS_INGESTED.labels(GENERIC_SOURCE, "unknown", "rejected").inc()
        raise
    return account, body


async def receive_event(
    accounts: AccountCache,
    queue: EventQueue,
    delivery: SignedDelivery,
    settings: Settings,
    now: dt.datetime,
) -> IngestResult:
    """One signed event; its ``webhook-id`` is the idempotency key. Written through
    ``queue``, together with the account's other events arriving meanwhile."""
    account, body = await _authenticated_body(accounts, delivery, settings, now)
    try:
        event = EventIn.model_validate(parse_json(body))
    except ValidationError as exc:
        _count_invalid()
        raise validation_error(exc) from None
    except AppError:  # not JSON, or text that cannot be stored
        _count_invalid()
        raise
    webhook_id = delivery.headers["webhook-id"]  # checked by the signature verification
    return await queue.ingest(account, Delivery(webhook_id, event, body.decode()), now)


async def receive_batch(
    db: Database,
    accounts: AccountCache,
    delivery: SignedDelivery,
    settings: Settings,
    now: dt.datetime,
) -> BatchResult:
    """A signed batch; each item's ``id`` is its idempotency key. Valid items are stored
    together in one transaction; invalid ones are reported per item and write nothing."""
    account, body = await _authenticated_body(accounts, delivery, settings, now)
    try:
        batch = EventBatchIn.model_validate(parse_json(body))
    except ValidationError as exc:
        _count_invalid()
        raise validation_error(exc) from None
    except AppError:
        _count_invalid()
        raise
    if len(batch.events) > settings.max_batch_events:
        raise field_error("events", f"at most {settings.max_batch_events} events per batch")

    results: list[BatchItemResult | None] = [None] * len(batch.events)
    valid: list[tuple[int, BatchEventIn, str]] = []
    for index, item in enumerate(batch.events):
        item_id = item.get("id") if isinstance(item, dict) else None
        try:
            parsed = BatchEventIn.model_validate(item)
        except ValidationError as exc:
            errors = [
                BatchItemError(field=p.field, message=p.message)
                for p in problems_from_validation(exc.errors(), strip_source=False)
            ]
            EVENTS_INGESTED.labels(GENERIC_SOURCE, type_label(item), "invalid").inc()
            results[index] = BatchItemResult(
                id=item_id if isinstance(item_id, str) else None,
                index=index,
                status="invalid",
                errors=errors,
            )
            continue
        valid.append((index, parsed, _raw(item)))
    window = dt.timedelta(days=settings.attribution_days)
    deliveries = [Delivery(parsed.id, parsed, raw) for _, parsed, raw in valid]

    async def work(session: AsyncSession) -> list[IngestResult]:
        return await ingest_events(session, account, deliveries, now=now, attribution_window=window)

    outcomes = await db.transaction(work)
    for (index, parsed, _), outcome in zip(valid, outcomes, strict=True):
        results[index] = BatchItemResult(
            id=parsed.id,
            index=index,
            status="duplicate" if outcome.duplicate else "accepted",
            result=outcome,
        )
    final = [r for r in results if r is not None]
    return BatchResult(
        accepted=sum(r.status == "accepted" for r in final),
        duplicates=sum(r.status == "duplicate" for r in final),
        invalid=sum(r.status == "invalid" for r in final),
        results=final,
    )


def _count_invalid() -> None:
    EVENTS_INGESTED.labels(GENERIC_SOURCE, "unknown", "invalid").inc()


def _raw(item: dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)
