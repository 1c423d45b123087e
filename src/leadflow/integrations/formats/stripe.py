"""Stripe webhooks (https://docs.stripe.com/webhooks).

``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]``: each ``v1`` is the hex
HMAC-SHA256 of ``"{t}.{raw body}"`` keyed with the endpoint's signing secret (``whsec_…``)
as UTF-8 bytes; the secret is not base64-decoded, unlike Standard Webhooks. Several ``v1``
entries appear while a secret is rolled. The event ``id`` is the idempotency key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from leadflow.ingest.errors import TimestampOutOfTolerance
from leadflow.integrations.formats import Credentials, CustomerRef, Ignored, Normalized, Outcome
from leadflow.integrations.formats.common import (
    country,
    currency,
    email,
    event_fields,
    from_unix,
    header,
    hmac_sha256,
    is_digits,
    iso,
    items,
    json_object,
    language,
    minor_units,
    money,
    obj,
    product,
    same,
    split_name,
    text,
    unauthorized,
    url,
)
from leadflow.kit.errors import field_error
from leadflow.vocabulary import EventType

PLATFORM = "stripe"
SIGNATURE_HEADER = "Stripe-Signature"

# Stripe represents ISK in two-decimal minor units (amounts divisible by 100) although ISO 4217
# gives it none: https://docs.stripe.com/currencies#special-cases
_MINOR_UNIT_EXPONENT = {"ISK": 2}

USED_TYPES = (
    "checkout.session.expired",
    "checkout.session.completed",
    "customer.subscription.trial_will_end",
    "invoice.upcoming",
    "invoice.paid",
    "invoice.payment_failed",
)
# Not turned into leads, but they tell which email is behind a customer id.
LEARNING_TYPES = ("customer.created", "customer.updated")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature Stripe sends for ``body`` at ``timestamp``."""
    return hmac_sha256(secret, f"{timestamp}.".encode() + body).hex()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> None:
    value = header(headers, SIGNATURE_HEADER)
    if value is None:
        raise unauthorized(f"Missing {SIGNATURE_HEADER} header.")
    timestamp: str | None = None
    offered: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            timestamp = item
        elif key == "v1":
            offered.append(item)
    if timestamp is None or not is_digits(timestamp) or len(timestamp) > 12 or not offered:
        raise unauthorized(f"{SIGNATURE_HEADER} must carry t=<timestamp> and v1=<signature>.")
    expected = signature(secret, int(timestamp), body)
    matched = False
    for candidate in offered:  # compare every one, in constant time
        matched |= same(expected, candidate)
    if not matched:
        raise unauthorized(
            f"No v1 signature in {SIGNATURE_HEADER} matches the configured signing secret."
        )
    if abs(now.timestamp() - int(timestamp)) > tolerance.total_seconds():
        raise TimestampOutOfTolerance(
            f"The {SIGNATURE_HEADER} timestamp is more than "
            f"{int(tolerance.total_seconds())} s away from now; replays are refused."
        )


def read(
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    *,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> Outcome:
    verify(headers, body, credentials.secret, now=now, tolerance=tolerance)
    return parse(body, now=now)


def parse(body: bytes, *, now: dt.datetime) -> Outcome:
    event = json_object(body)
    event_id = text(event.get("id"), 255)
    if event_id is None:
        raise field_error("id", "is required (the Stripe event id)")
    topic = text(event.get("type"), 64)
    if topic is None:
        raise field_error("type", "is required (the Stripe event type)")
    occurred_at = from_unix(event.get("created")) or now
    if topic not in USED_TYPES and topic not in LEARNING_TYPES:
        return Ignored(event_id, topic, occurred_at=occurred_at)
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise field_error("data.object", "must be an object")
    thing: dict[str, Any] = data["object"]
    if topic in LEARNING_TYPES:
        return Ignored(event_id, topic, occurred_at=occurred_at, customer=_customer_object(thing))
    if topic.startswith("checkout.session."):
        return _checkout_session(event_id, topic, thing, occurred_at)
    if topic == "customer.subscription.trial_will_end":
        return _trial(event_id, topic, thing, occurred_at)
    return _invoice(event_id, topic, thing, occurred_at)


def _customer_id(value: Any) -> str | None:
    """``customer`` is an id, or the expanded object."""
    if isinstance(value, dict):
        return text(value.get("id"), 255)
    return text(value, 255)


def _customer_object(customer: dict[str, Any]) -> CustomerRef | None:
    customer_id = text(customer.get("id"), 255)
    if customer_id is None:
        return None
    first, last = split_name(customer.get("name"))
    return CustomerRef(customer_id, email(customer.get("email"), "data.object.email"), first, last)


def _amount(value: Any, code: str | None) -> Decimal | None:
    if code is None:
        return None
    return minor_units(value, code, _MINOR_UNIT_EXPONENT.get(code))


def _price_line(line: dict[str, Any], code: str | None) -> dict[str, Any] | None:
    price = obj(line.get("price"))
    product_ref = price.get("product")
    product_obj = obj(product_ref)
    product_id = product_obj.get("id") if product_obj else product_ref
    details = obj(obj(line.get("pricing")).get("price_details"))
    return product(
        product_id or details.get("product") or price.get("id") or line.get("id"),
        line.get("description") or product_obj.get("name") or price.get("nickname") or product_id,
        line.get("quantity") or 1,
        _amount(price.get("unit_amount"), code),
    )


def _checkout_session(
    event_id: str, topic: str, session: dict[str, Any], occurred_at: dt.datetime
) -> Outcome:
    session_id = text(session.get("id"), 255)
    if session_id is None:
        raise field_error("data.object.id", "is required (the checkout session id)")
    details = obj(session.get("customer_details"))
    address = email(details.get("email"), "data.object.customer_details.email") or email(
        session.get("customer_email"), "data.object.customer_email"
    )
    first, last = split_name(details.get("name"))
    code = currency(session.get("currency"))
    customer_id = _customer_id(session.get("customer"))
    completed = topic == "checkout.session.completed"
    recovery = obj(obj(session.get("after_expiration")).get("recovery"))
    fields = event_fields(
        type=(EventType.ORDER_COMPLETED if completed else EventType.CHECKOUT_ABANDONED).value,
        occurred_at=occurred_at,
        reference=session_id,
        email=address,
        first_name=first,
        last_name=last,
        language=language(session.get("locale")),
        country=country(obj(details.get("address")).get("country")),
        products=[
            _price_line(li, code) for li in items(obj(session.get("line_items")).get("data"))
        ],
        amount=_amount(session.get("amount_total"), code),
        currency=code,
        recovery_url=None if completed else url(recovery.get("url")),
        attributes={"stripe_customer": customer_id},
    )
    return Normalized(event_id, topic, fields, customer=_ref(customer_id, address, first, last))


def _ref(
    customer_id: str | None, address: str | None, first: str | None, last: str | None
) -> CustomerRef | None:
    return CustomerRef(customer_id, address, first, last) if customer_id else None


def _subscription_total(lines: list[dict[str, Any]], code: str | None) -> Decimal | None:
    """What the subscription will cost per period, when every item has a unit price."""
    total = Decimal(0)
    for line in lines:
        unit = _amount(obj(line.get("price")).get("unit_amount"), code)
        quantity = line.get("quantity", 1)
        if unit is None or not isinstance(quantity, int) or isinstance(quantity, bool):
            return None
        total += unit * quantity
    return money(total, code) if lines else None


def _trial(event_id: str, topic: str, sub: dict[str, Any], occurred_at: dt.datetime) -> Outcome:
    subscription_id = text(sub.get("id"), 255)
    if subscription_id is None:
        raise field_error("data.object.id", "is required (the subscription id)")
    customer_id = _customer_id(sub.get("customer"))
    expanded = obj(sub.get("customer"))
    code = currency(sub.get("currency"))
    lines = items(obj(sub.get("items")).get("data"))
    total = _subscription_total(lines, code)
    trial_end = from_unix(sub.get("trial_end"))
    first, last = split_name(expanded.get("name"))
    address = email(expanded.get("email"), "data.object.customer.email")
    fields = event_fields(
        type=EventType.TRIAL_STARTED.value,
        occurred_at=occurred_at,
        reference=subscription_id,
        email=address,
        first_name=first,
        last_name=last,
        products=[_price_line(li, code) for li in lines],
        amount=total,
        currency=code,
        attributes={
            "stripe_customer": customer_id,
            "trial_end": iso(trial_end) if trial_end else None,
        },
    )
    return Normalized(event_id, topic, fields, customer=_ref(customer_id, address, first, last))


def _invoice(
    event_id: str, topic: str, invoice: dict[str, Any], occurred_at: dt.datetime
) -> Outcome:
    # ``subscription`` until API version 2025-03-31, ``parent.subscription_details`` since.
    subscription_id = _customer_id(invoice.get("subscription")) or _customer_id(
        obj(obj(invoice.get("parent")).get("subscription_details")).get("subscription")
    )
    invoice_id = text(invoice.get("id"), 255)
    customer_id = _customer_id(invoice.get("customer"))
    address = email(invoice.get("customer_email"), "data.object.customer_email")
    first, last = split_name(invoice.get("customer_name"))
    code = currency(invoice.get("currency"))
    if topic == "invoice.upcoming":
        if subscription_id is None:
            return Ignored(event_id, topic, "invoice has no subscription", occurred_at)
        kind, amount_key = EventType.RENEWAL_DUE, "amount_due"
    elif topic == "invoice.paid":
        kind, amount_key = EventType.ORDER_COMPLETED, "amount_paid"
        if invoice.get("amount_paid") == 0:
            # A trial's or a fully discounted invoice: no purchase to convert a lead with.
            return Ignored(
                event_id,
                topic,
                "zero-amount invoice",
                occurred_at,
                customer=_ref(customer_id, address, first, last),
            )
    else:
        kind, amount_key = EventType.ORDER_UNFINISHED, "amount_due"
    reference = subscription_id or invoice_id
    if reference is None:
        raise field_error("data.object.subscription", "is required (the subscription id)")
    renews_at = from_unix(invoice.get("next_payment_attempt")) or from_unix(
        invoice.get("period_end")
    )
    fields = event_fields(
        type=kind.value,
        occurred_at=occurred_at,
        reference=reference,
        email=address,
        first_name=first,
        last_name=last,
        country=country(obj(invoice.get("customer_address")).get("country")),
        products=[_price_line(li, code) for li in items(obj(invoice.get("lines")).get("data"))],
        amount=_amount(invoice.get(amount_key), code),
        currency=code,
        recovery_url=(
            url(invoice.get("hosted_invoice_url")) if kind is EventType.ORDER_UNFINISHED else None
        ),
        attributes={
            "stripe_customer": customer_id,
            "stripe_invoice": invoice_id,
            "renews_at": iso(renews_at) if renews_at and kind is EventType.RENEWAL_DUE else None,
        },
    )
    return Normalized(event_id, topic, fields, customer=_ref(customer_id, address, first, last))
