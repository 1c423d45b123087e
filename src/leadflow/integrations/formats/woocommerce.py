"""WooCommerce webhooks (https://woocommerce.com/document/webhooks/), API version
"WP REST API Integration v3".

``X-WC-Webhook-Signature`` is the base64 HMAC-SHA256 of the raw body keyed with the webhook's
secret; ``X-WC-Webhook-Topic`` names the topic (``order.created``…);
``X-WC-Webhook-Delivery-ID`` is the idempotency key. When a webhook is saved, WooCommerce
first posts an unsigned ``webhook_id=<id>`` form and refuses to activate the webhook unless
the answer is 200.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from leadflow.integrations.formats import Credentials, Ignored, Normalized, Outcome, Ping
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
    money,
    obj,
    product,
    require_header,
    required_id,
    text,
    url,
    verify_body_signature,
)
from leadflow.vocabulary import EventType

PLATFORM = "woocommerce"
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"

ORDER_TOPICS = ("order.created", "order.updated")
UNFINISHED_STATUSES = ("pending", "failed", "on-hold")
COMPLETED_STATUSES = ("processing", "completed")

_PING = re.compile(rb"webhook_id=(\d{1,20})")


signature = body_signature


def ping(headers: Mapping[str, str], body: bytes) -> Ping | None:
    """The unsigned activation request (``webhook_id=123``), or None."""
    if header(headers, SIGNATURE_HEADER) is not None:
        return None
    match = _PING.fullmatch(body.strip())
    return Ping(match.group(1).decode()) if match else None


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
    delivery_id = require_header(headers, DELIVERY_ID_HEADER)
    topic = require_header(headers, TOPIC_HEADER)[:64]
    order = json_object(body)
    if topic not in ORDER_TOPICS:
        return Ignored(delivery_id, topic, occurred_at=now)
    order_id = required_id(order, "id")
    status = text(order.get("status"), 64)
    modified = from_iso(order.get("date_modified_gmt"), naive_is_utc=True)
    created = from_iso(order.get("date_created_gmt"), naive_is_utc=True)
    occurred_at = modified or created or now
    if status in UNFINISHED_STATUSES:
        kind = EventType.ORDER_UNFINISHED
    elif status in COMPLETED_STATUSES:
        kind = EventType.ORDER_COMPLETED
        paid = from_iso(order.get("date_paid_gmt"), naive_is_utc=True)
        occurred_at = paid or occurred_at
    else:
        return Ignored(
            delivery_id,
            topic,
            f"order status {status!r} is not used" if status else "order has no status",
            occurred_at,
            reference=order_id,
        )
    billing = obj(order.get("billing"))
    code = currency(order.get("currency"))
    fields = event_fields(
        type=kind.value,
        occurred_at=occurred_at,
        reference=order_id,
        email=email(billing.get("email"), "billing.email"),
        first_name=text(billing.get("first_name"), 200),
        last_name=text(billing.get("last_name"), 200),
        country=country(billing.get("country")),
        products=[_line(line, code) for line in items(order.get("line_items"))],
        amount=money(order.get("total"), code),
        currency=code,
        recovery_url=url(order.get("payment_url")) if kind is EventType.ORDER_UNFINISHED else None,
        attributes={
            "woocommerce_order_number": text(order.get("number"), 64),
            "woocommerce_status": status,
        },
    )
    return Normalized(delivery_id, topic, fields)


def _line(line: dict[str, Any], code: str | None) -> dict[str, Any] | None:
    variation = line.get("variation_id")
    return product(
        variation if variation else line.get("product_id") or line.get("sku"),
        line.get("name"),
        line.get("quantity"),
        money(line.get("price"), code),
    )
