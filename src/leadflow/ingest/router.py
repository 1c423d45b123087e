from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.config import Settings
from leadflow.deps import ClockDep, DatabaseDep, SettingsDep
from leadflow.ingest.schemas import (
    BatchEventIn,
    BatchItemError,
    BatchItemResult,
    BatchResult,
    EventBatchIn,
    EventIn,
    IngestResult,
)
from leadflow.ingest.service import ingest_event
from leadflow.ingest.verify import parse_json, read_body, verify_standard_webhook
from leadflow.kit.db import Database, in_transaction
from leadflow.kit.errors import (
    error_responses,
    field_error,
    not_found,
    problems_from_validation,
    validation_error,
)

router = APIRouter(tags=["webhooks"])

WebhookId = Annotated[str | None, Header(alias="webhook-id", description="Unique message id.")]
WebhookTimestamp = Annotated[
    str | None, Header(alias="webhook-timestamp", description="Seconds since the epoch.")
]
WebhookSignature = Annotated[
    str | None,
    Header(
        alias="webhook-signature", description="`v1,<base64>`; several space-separated allowed."
    ),
]


def _body_doc(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


async def _authenticated_body(
    request: Request,
    db: Database,
    account_id: str,
    settings: Settings,
    now: dt.datetime,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
) -> tuple[Account, bytes]:
    async with db.sessionmaker() as session:
        account = await session.get(Account, account_id)
    if account is None:
        raise not_found("account")
    body = await read_body(request, settings.max_body_bytes)
    verify_standard_webhook(
        secrets=[account.webhook_secret],
        msg_id=msg_id,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
        tolerance=dt.timedelta(seconds=settings.webhook_tolerance_seconds),
    )
    return account, body


@router.post(
    "/v1/webhooks/{account_id}/events",
    summary="Receive one event",
    response_model=IngestResult,
    responses=error_responses(401, 404, 413, 422),
    openapi_extra=_body_doc("EventIn"),
)
async def receive_event(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    webhook_id: WebhookId = None,
    webhook_timestamp: WebhookTimestamp = None,
    webhook_signature: WebhookSignature = None,
) -> IngestResult:
    """Signed with the account's `whsec_…` secret (Standard Webhooks). The `webhook-id`
    is the idempotency key: a repeated delivery returns the first result with
    `duplicate: true` and writes nothing."""
    now = clock.now()
    account, body = await _authenticated_body(
        request, db, account_id, settings, now, webhook_id, webhook_timestamp, webhook_signature
    )
    try:
        event = EventIn.model_validate(parse_json(body))
    except ValidationError as exc:
        raise validation_error(exc) from None
    assert webhook_id is not None  # checked by the signature verification
    window = dt.timedelta(days=settings.attribution_days)

    async def work(session: AsyncSession) -> IngestResult:
        return await ingest_event(
            session,
            account,
            external_id=webhook_id,
            event=event,
            raw_body=body.decode(),
            now=now,
            attribution_window=window,
        )

    return await in_transaction(db, work)


@router.post(
    "/v1/webhooks/{account_id}/events/batch",
    summary="Receive up to 1,000 events",
    response_model=BatchResult,
    responses=error_responses(401, 404, 413, 422),
    openapi_extra=_body_doc("EventBatchIn"),
)
async def receive_batch(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    webhook_id: WebhookId = None,
    webhook_timestamp: WebhookTimestamp = None,
    webhook_signature: WebhookSignature = None,
) -> BatchResult:
    """The request is signed as a whole; each item carries its own `id` as idempotency key.
    Valid items are stored together in one transaction; invalid ones are reported per item
    (`status: invalid` with `errors`) and write nothing."""
    now = clock.now()
    account, body = await _authenticated_body(
        request, db, account_id, settings, now, webhook_id, webhook_timestamp, webhook_signature
    )
    try:
        batch = EventBatchIn.model_validate(parse_json(body))
    except ValidationError as exc:
        raise validation_error(exc) from None
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
            results[index] = BatchItemResult(
                id=item_id if isinstance(item_id, str) else None,
                index=index,
                status="invalid",
                errors=errors,
            )
            continue
        valid.append((index, parsed, _raw(item)))
    # Stable lock order across concurrent batches: ingest_event locks each contact (email)
    # until commit, so take them in email order, then by item id.
    valid.sort(key=lambda entry: (entry[1].customer.email.lower(), entry[1].id))
    window = dt.timedelta(days=settings.attribution_days)

    async def work(session: AsyncSession) -> list[tuple[int, str, IngestResult]]:
        out = []
        for index, parsed, raw in valid:
            outcome = await ingest_event(
                session,
                account,
                external_id=parsed.id,
                event=parsed,
                raw_body=raw,
                now=now,
                attribution_window=window,
            )
            out.append((index, parsed.id, outcome))
        return out

    for index, item_id, outcome in await in_transaction(db, work):
        results[index] = BatchItemResult(
            id=item_id,
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


def _raw(item: dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)
