"""``POST /v1/webhooks/{account_id}/{postmark,sendgrid,mailgun,ses}``: bounce and complaint
webhooks of email service providers.

The router only wires the request to ``integrations.mail_events``, which authenticates it
with the provider's own scheme, reads its reports and applies them in one transaction
(nothing is written on any error)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from leadflow.api.deps import ClockDep, DatabaseDep, SettingsDep
from leadflow.ingest.intake import SignedDelivery
from leadflow.ingest.verify import read_body
from leadflow.integrations.mail_events import MailWebhookResult, receive_mail_events
from leadflow.integrations.schemas import Platform
from leadflow.integrations.ses import SnsClient
from leadflow.kit.errors import error_responses

router = APIRouter(tags=["webhooks"])

RESPONSES = error_responses(401, 404, 409, 413, 422)


def get_sns_client(request: Request) -> SnsClient:
    """One per app: it keeps the SNS signing certificates it fetched."""
    client = getattr(request.app.state, "sns_client", None)
    if client is None:
        client = request.app.state.sns_client = SnsClient()
    return client


SnsDep = Annotated[SnsClient, Depends(get_sns_client)]


def _body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_ARRAY: dict[str, Any] = {"type": "array", "items": _OBJECT}


def _delivery(account_id: str, request: Request) -> SignedDelivery:
    return SignedDelivery(account_id, request.headers, partial(read_body, request))


@router.post(
    "/v1/webhooks/{account_id}/postmark",
    summary="Receive a Postmark bounce or spam complaint",
    response_model=MailWebhookResult,
    responses=RESPONSES,
    openapi_extra=_body("A Postmark `Bounce` or `SpamComplaint` webhook.", _OBJECT),
)
async def receive_postmark(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    sns: SnsDep,
    authorization: Annotated[
        str | None,
        Header(
            alias="Authorization",
            description="`Basic …`: the credentials put in the webhook URL "
            "(`https://user:password@…`), as set with `PUT /v1/integrations/postmark`.",
        ),
    ] = None,
) -> MailWebhookResult:
    """`HardBounce` and `BadEmailAddress` are hard bounces; `SoftBounce`, `Transient` and
    `DnsError` soft ones; `SpamComplaint` a complaint. Other record and bounce types answer
    `ignored: 1`. The bounce `ID` is the idempotency key."""
    return await receive_mail_events(
        db, Platform.POSTMARK, _delivery(account_id, request), settings, clock.now(), sns
    )


@router.post(
    "/v1/webhooks/{account_id}/sendgrid",
    summary="Receive SendGrid events (signed event webhook)",
    response_model=MailWebhookResult,
    responses=RESPONSES,
    openapi_extra=_body("A JSON array of SendGrid events.", _ARRAY),
)
async def receive_sendgrid(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    sns: SnsDep,
    signature: Annotated[
        str | None,
        Header(
            alias="X-Twilio-Email-Event-Webhook-Signature",
            description="Base64 ECDSA P-256 (SHA-256) signature of the timestamp header "
            "followed by the body.",
        ),
    ] = None,
    timestamp: Annotated[str | None, Header(alias="X-Twilio-Email-Event-Webhook-Timestamp")] = None,
) -> MailWebhookResult:
    """Verified with the verification key set with `PUT /v1/integrations/sendgrid`.
    `bounce` events are hard bounces (`type: bounce`) or soft ones (`type: blocked`);
    `spamreport` is a complaint; other events are ignored. `sg_event_id` is the idempotency
    key; `smtp-id` finds the follow-up."""
    return await receive_mail_events(
        db, Platform.SENDGRID, _delivery(account_id, request), settings, clock.now(), sns
    )


@router.post(
    "/v1/webhooks/{account_id}/mailgun",
    summary="Receive a Mailgun event",
    response_model=MailWebhookResult,
    responses=RESPONSES,
    openapi_extra=_body(
        "A Mailgun webhook: `signature` (`timestamp`, `token`, `signature`) and `event-data`.",
        _OBJECT,
    ),
)
async def receive_mailgun(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    sns: SnsDep,
) -> MailWebhookResult:
    """`signature.signature` is the hex HMAC-SHA256 of `timestamp` + `token` under the HTTP
    webhook signing key (`PUT /v1/integrations/mailgun`). `failed` events are hard
    (`severity: permanent`) or soft bounces; `complained` is a complaint; other events are
    ignored. `event-data.id` is the idempotency key."""
    return await receive_mail_events(
        db, Platform.MAILGUN, _delivery(account_id, request), settings, clock.now(), sns
    )


@router.post(
    "/v1/webhooks/{account_id}/ses",
    summary="Receive Amazon SES notifications (through SNS)",
    response_model=MailWebhookResult,
    responses=error_responses(401, 404, 409, 413, 422, 503),
    openapi_extra=_body(
        "An SNS message (`Notification`, `SubscriptionConfirmation` or "
        "`UnsubscribeConfirmation`) of the topic set with `PUT /v1/integrations/ses`.",
        _OBJECT,
    ),
)
async def receive_ses(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    sns: SnsDep,
) -> MailWebhookResult:
    """The SNS signature is verified with the certificate at `SigningCertURL` (fetched only
    from `https://sns.<region>.amazonaws.com`), and `TopicArn` must be the configured topic.
    A `SubscriptionConfirmation` is confirmed by visiting its `SubscribeURL`. SES `Bounce`
    notifications are hard (`Permanent`) or soft bounces; `Complaint` is a complaint; one
    report per recipient, keyed by `feedbackId` and address."""
    return await receive_mail_events(
        db, Platform.SES, _delivery(account_id, request), settings, clock.now(), sns
    )
