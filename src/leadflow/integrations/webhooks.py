"""``POST /v1/webhooks/{account_id}/{stripe,shopify,woocommerce,paypro}``: platform webhooks.

The router reads and authenticates; the adapters (``leadflow.ingest.formats``) verify and map;
``inbound.accept`` stores and applies, in one transaction. Nothing is written on any error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account
from leadflow.config import Settings
from leadflow.deps import ClockDep, DatabaseDep, SettingsDep
from leadflow.ingest.formats import Credentials, Outcome, Ping, paypro, shopify, stripe, woocommerce
from leadflow.ingest.verify import read_body
from leadflow.integrations.inbound import accept
from leadflow.integrations.models import Integration
from leadflow.integrations.schemas import Platform, WebhookResult
from leadflow.kit.clock import Clock
from leadflow.kit.db import Database, in_transaction
from leadflow.kit.errors import AppError, error_responses, not_found

router = APIRouter(tags=["webhooks"])

Reader = Callable[..., Outcome]
READERS: dict[Platform, Reader] = {
    Platform.STRIPE: stripe.read,
    Platform.SHOPIFY: shopify.read,
    Platform.WOOCOMMERCE: woocommerce.read,
    Platform.PAYPRO: paypro.read,
}
RESPONSES = error_responses(401, 404, 409, 413, 422)


def _not_configured(platform: Platform) -> AppError:
    return AppError(
        409,
        "integration_not_configured",
        f"No {platform.value} webhook secret is configured for this account: set it with "
        f"PUT /v1/integrations/{platform.value}.",
    )


async def _receive(
    platform: Platform,
    account_id: str,
    request: Request,
    db: Database,
    settings: Settings,
    clock: Clock,
) -> WebhookResult:
    now = clock.now()
    async with db.sessionmaker() as session:
        account = await session.get(Account, account_id)
        integration = (
            await session.get(Integration, (account_id, platform.value)) if account else None
        )
    if account is None:
        raise not_found("account")
    body = await read_body(request, settings.max_body_bytes)
    headers: Mapping[str, str] = request.headers
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
        raise _not_configured(platform)
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

    return await in_transaction(db, work)


def _body(media_type: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": schema}},
        }
    }


_JSON_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


@router.post(
    "/v1/webhooks/{account_id}/stripe",
    summary="Receive a Stripe event",
    response_model=WebhookResult,
    responses=RESPONSES,
    openapi_extra=_body("application/json", "A Stripe `Event` object.", _JSON_OBJECT),
)
async def receive_stripe(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    stripe_signature: Annotated[
        str | None,
        Header(
            alias="Stripe-Signature",
            description='`t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`.',
        ),
    ] = None,
) -> WebhookResult:
    """Signed with the endpoint's signing secret (`PUT /v1/integrations/stripe`); the
    timestamp must be within `LEADFLOW_WEBHOOK_TOLERANCE_SECONDS`. Used: `checkout.session.expired`,
    `checkout.session.completed`, `customer.subscription.trial_will_end`, `invoice.upcoming`,
    `invoice.paid`, `invoice.payment_failed` (and `customer.created|updated` to learn emails);
    other types answer `ignored: true`. The event `id` is the idempotency key."""
    return await _receive(Platform.STRIPE, account_id, request, db, settings, clock)


@router.post(
    "/v1/webhooks/{account_id}/shopify",
    summary="Receive a Shopify webhook",
    response_model=WebhookResult,
    responses=RESPONSES,
    openapi_extra=_body(
        "application/json", "A Shopify checkout or order (webhook API payload).", _JSON_OBJECT
    ),
)
async def receive_shopify(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    x_shopify_hmac_sha256: Annotated[
        str | None,
        Header(alias="X-Shopify-Hmac-Sha256", description="Base64 HMAC-SHA256 of the body."),
    ] = None,
    x_shopify_topic: Annotated[
        str | None, Header(alias="X-Shopify-Topic", description="e.g. `checkouts/update`.")
    ] = None,
    x_shopify_webhook_id: Annotated[
        str | None,
        Header(alias="X-Shopify-Webhook-Id", description="The idempotency key."),
    ] = None,
) -> WebhookResult:
    """Used: `checkouts/create`, `checkouts/update` (watched; abandoned after
    `LEADFLOW_SHOPIFY_ABANDON_AFTER_MINUTES` without an order), `orders/create`,
    `orders/paid`; other topics answer `ignored: true`."""
    return await _receive(Platform.SHOPIFY, account_id, request, db, settings, clock)


@router.post(
    "/v1/webhooks/{account_id}/woocommerce",
    summary="Receive a WooCommerce webhook",
    response_model=WebhookResult,
    responses=RESPONSES,
    openapi_extra=_body(
        "application/json",
        "A WooCommerce order (REST API v3). The unsigned activation ping is a "
        "`webhook_id=<id>` form.",
        _JSON_OBJECT,
    ),
)
async def receive_woocommerce(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    x_wc_webhook_signature: Annotated[
        str | None,
        Header(alias="X-WC-Webhook-Signature", description="Base64 HMAC-SHA256 of the body."),
    ] = None,
    x_wc_webhook_topic: Annotated[
        str | None, Header(alias="X-WC-Webhook-Topic", description="e.g. `order.updated`.")
    ] = None,
    x_wc_webhook_delivery_id: Annotated[
        str | None,
        Header(alias="X-WC-Webhook-Delivery-ID", description="The idempotency key."),
    ] = None,
) -> WebhookResult:
    """Used: `order.created` and `order.updated`: `pending`, `failed`, `on-hold` orders are
    unfinished orders, `processing` and `completed` ones purchases; other statuses and topics
    answer `ignored: true`."""
    return await _receive(Platform.WOOCOMMERCE, account_id, request, db, settings, clock)


_PAYPRO_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in (
            "IPN_TYPE_ID",
            "IPN_TYPE_NAME",
            "ORDER_ID",
            "ORDER_STATUS",
            "ORDER_TOTAL_AMOUNT",
            "ORDER_CURRENCY_CODE",
            "CUSTOMER_EMAIL",
            "SUBSCRIPTION_ID",
            "TEST_MODE",
            "HASH",
            "SIGNATURE",
        )
    },
    "additionalProperties": {"type": "string"},
}


@router.post(
    "/v1/webhooks/{account_id}/paypro",
    summary="Receive a PayPro Global IPN",
    response_model=WebhookResult,
    responses=RESPONSES,
    openapi_extra=_body("application/x-www-form-urlencoded", "A PayPro Global IPN.", _PAYPRO_FORM),
)
async def receive_paypro(
    account_id: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> WebhookResult:
    """Authenticated by its `HASH` (secret key) and `SIGNATURE` (validation key) fields.
    Test orders (`HASH = MD5("1")`) need a valid `SIGNATURE`. `ORDER_ID` + `IPN_TYPE_ID` is
    the idempotency key (`IS_RESENT=1` deliveries are duplicates). Answers 200 only once the
    IPN is stored."""
    return await _receive(Platform.PAYPRO, account_id, request, db, settings, clock)
