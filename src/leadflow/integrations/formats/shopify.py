"""Shopify webhooks (https://shopify.dev/docs/apps/build/webhooks).

``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body keyed with the app's
client secret (or the store's webhook signing key) as UTF-8 bytes. ``X-Shopify-Topic`` names
the topic; ``X-Shopify-Webhook-Id`` (else ``X-Shopify-Event-Id``) is the idempotency key.

Shopify sends no "checkout abandoned" event: ``checkouts/create|update`` become pending
checkouts, abandoned by a worker after ``LEADFLOW_SHOPIFY_ABANDON_AFTER_MINUTES`` unless an
order (``orders/create``, ``orders/paid``) carrying their ``checkout_token`` arrives first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from leadflow.integrations.formats import Credentials, Ignored, Normalized, Outcome, PendingCheckout
from leadflow.integrations.formats.common import (
    body_signature,
    country,
    currency,
    email,
    event_fields,
    from_iso,
    header,
    items,
    json_object,
    language,
    money,
    obj,
    product,
    require_header,
    required_id,
    text,
    url,
    verify_body_signature,
)
from leadflow.kit.errors import field_error
from leadflow.vocabulary import EventType

PLATFORM = "shopify"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"

CHECKOUT_TOPICS = ("checkouts/create", "checkouts/update")
ORDER_TOPICS = ("orders/create", "orders/paid")


signature = body_signature


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    verify_body_signature(headers, body, secret, SIGNATURE_HEADER)


def read(
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    *,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> Outcome:
    verify(headers, body, credentials.secret)
    return parse(headers, body, now=now)


def parse(headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> Outcome:
    name = WEBHOOK_ID_HEADER if header(headers, WEBHOOK_ID_HEADER) else EVENT_ID_HEADER
    if header(headers, name) is None:
        raise field_error(WEBHOOK_ID_HEADER, f"header is required (or {EVENT_ID_HEADER})")
    delivery_id = require_header(headers, name)
    topic = require_header(headers, TOPIC_HEADER)[:64]
    data = json_object(body)
    if topic in CHECKOUT_TOPICS:
        return _checkout(delivery_id, topic, data, now)
    if topic in ORDER_TOPICS:
        return _order(delivery_id, topic, data, now)
    return Ignored(delivery_id, topic, occurred_at=now)


def _names(data: dict[str, Any]) -> tuple[str | None, str | None]:
    for source in (
        obj(data.get("customer")),
        obj(data.get("billing_address")),
        obj(data.get("shipping_address")),
    ):
        first, last = text(source.get("first_name"), 200), text(source.get("last_name"), 200)
        if first or last:
            return first, last
    return None, None


def _email(data: dict[str, Any]) -> str | None:
    return (
        email(data.get("email"), "email")
        or email(data.get("contact_email"), "contact_email")
        or email(obj(data.get("customer")).get("email"), "customer.email")
    )


def _lines(data: dict[str, Any], code: str | None) -> list[dict[str, Any] | None]:
    lines = []
    for line in items(data.get("line_items")):
        title = text(line.get("title"), 400)
        variant = text(line.get("variant_title"), 99)
        name = f"{title} - {variant}" if title and variant else title or text(line.get("name"), 500)
        lines.append(
            product(
                line.get("variant_id") or line.get("product_id") or line.get("sku"),
                name,
                line.get("quantity"),
                money(line.get("price"), code),
            )
        )
    return lines


def _checkout(
    delivery_id: str, topic: str, data: dict[str, Any], now: dt.datetime
) -> PendingCheckout:
    token = required_id(data, "token")
    if len(token) > 200:
        raise field_error("token", "must be at most 200 characters")
    code = currency(data.get("currency"))
    first, last = _names(data)
    started_at = min(from_iso(data.get("created_at")) or now, now)
    updated_at = min(from_iso(data.get("updated_at")) or started_at, now)
    lines = [line for line in _lines(data, code) if line is not None]
    return PendingCheckout(
        external_id=delivery_id,
        topic=topic,
        token=token,
        email=_email(data),
        first_name=first,
        last_name=last,
        products=lines,
        amount=money(data.get("total_price"), code),
        currency=code,
        recovery_url=url(data.get("abandoned_checkout_url")),
        language=language(data.get("customer_locale")),
        billing_country=country(obj(data.get("billing_address")).get("country_code")),
        shipping_country=country(obj(data.get("shipping_address")).get("country_code")),
        started_at=started_at,
        updated_at=updated_at,
        completed=data.get("completed_at") is not None,
        attributes={"shopify_checkout_id": text(data.get("id"), 64)},
    )


def _order(delivery_id: str, topic: str, data: dict[str, Any], now: dt.datetime) -> Normalized:
    order_id = required_id(data, "id")
    checkout_token = text(data.get("checkout_token"), 255)
    code = currency(data.get("currency"))
    first, last = _names(data)
    billing, shipping = obj(data.get("billing_address")), obj(data.get("shipping_address"))
    fields = event_fields(
        type=EventType.ORDER_COMPLETED.value,
        occurred_at=from_iso(data.get("processed_at")) or from_iso(data.get("created_at")) or now,
        # The checkout token: it names the abandoned-checkout lead this order converts.
        reference=checkout_token or order_id,
        email=_email(data),
        first_name=first,
        last_name=last,
        language=language(data.get("customer_locale")),
        country=country(billing.get("country_code")) or country(shipping.get("country_code")),
        products=_lines(data, code),
        amount=money(data.get("total_price"), code),
        currency=code,
        attributes={"shopify_order_id": order_id, "shopify_order_name": text(data.get("name"), 64)},
    )
    return Normalized(delivery_id, topic, fields, checkout_token=checkout_token)
