"""``POST /v1/webhooks/{account_id}/{stripe,shopify,woocommerce,paypro}``: platform webhooks.

The router only wires the request to ``integrations.inbound.receive``, which authenticates it
with the platform's own scheme, maps it (``leadflow.integrations.formats``), then stores and
applies it in one transaction. Nothing is written on any error.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from leadflow.api.deps import ClockDep, DatabaseDep, SettingsDep
from leadflow.ingest.intake import SignedDelivery
from leadflow.ingest.verify import read_body
from leadflow.integrations.inbound import receive
from leadflow.integrations.schemas import Platform, WebhookResult
from leadflow.kit.errors import error_responses

router = APIRouter(tags=["webhooks"])

RESPONSES = error_responses(401, 404, 409, 413, 422)


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
    delivery = SignedDelivery(account_id, request.headers, partial(read_body, request))
    return await receive(db, Platform.STRIPE, delivery, settings, clock.now())


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
    delivery = SignedDelivery(account_id, request.headers, partial(read_body, request))
    return await receive(db, Platform.SHOPIFY, delivery, settings, clock.now())


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
    delivery = SignedDelivery(account_id, request.headers, partial(read_body, request))
    return await receive(db, Platform.WOOCOMMERCE, delivery, settings, clock.now())


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
    delivery = SignedDelivery(account_id, request.headers, partial(read_body, request))
    return await receive(db, Platform.PAYPRO, delivery, settings, clock.now())
