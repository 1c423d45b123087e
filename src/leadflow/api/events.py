"""``POST /v1/webhooks/{account_id}/events[/batch]``: signed generic events (Standard Webhooks)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from leadflow.api.deps import (
    AccountCacheDep,
    ClockDep,
    DatabaseDep,
    EventQueueDep,
    SettingsDep,
)
from leadflow.ingest import intake
from leadflow.ingest.schemas import BatchResult, IngestResult
from leadflow.ingest.verify import read_body
from leadflow.kit.errors import error_responses

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


def _delivery(account_id: str, request: Request) -> intake.SignedDelivery:
    return intake.SignedDelivery(account_id, request.headers, partial(read_body, request))


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
    accounts: AccountCacheDep,
    queue: EventQueueDep,
    settings: SettingsDep,
    clock: ClockDep,
    webhook_id: WebhookId = None,
    webhook_timestamp: WebhookTimestamp = None,
    webhook_signature: WebhookSignature = None,
) -> IngestResult:
    """Signed with the account's `whsec_…` secret (Standard Webhooks). The `webhook-id`
    is the idempotency key: a repeated delivery returns the first result with
    `duplicate: true` and writes nothing."""
    delivery = _delivery(account_id, request)
    return await intake.receive_event(accounts, queue, delivery, settings, clock.now())


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
    accounts: AccountCacheDep,
    settings: SettingsDep,
    clock: ClockDep,
    webhook_id: WebhookId = None,
    webhook_timestamp: WebhookTimestamp = None,
    webhook_signature: WebhookSignature = None,
) -> BatchResult:
    """The request is signed as a whole; each item carries its own `id` as idempotency key.
    Valid items are stored together in one transaction; invalid ones are reported per item
    (`status: invalid` with `errors`) and write nothing."""
    delivery = _delivery(account_id, request)
    return await intake.receive_batch(db, accounts, delivery, settings, clock.now())
