"""Builders for platform webhooks (realistic payloads, signed like each platform) and the
rows they write, for the integration tests alone (the shared helpers are in tests/support/)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models import Event, Lead, LeadEvent, PlatformCustomer, ShopifyCheckout
from tests.support.api import auth
from tests.support.database import count
from tests.support.events import iso

STRIPE_SECRET = "whsec_test_5f4dcc3b5aa765d61d8327deb882cf99"
SHOPIFY_SECRET = "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"
WC_SECRET = "Zk9#wc-webhook-secret"
PAYPRO_SECRET = "PPG-secret-key-8c1f"
PAYPRO_VALIDATION_KEY = "PPG-validation-key-42"
CHECKOUT_TOKEN = "2e7d9bfb3b7a5ac4d6b4e5f02c6a1a8e"  # a Shopify checkout token, not a secret


# --- database --------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    events: int
    leads: int
    lead_events: int
    checkouts: int
    customers: int


NOTHING = Written(0, 0, 0, 0, 0)


async def written(db: Database) -> Written:
    return Written(
        events=await count(db, Event),
        leads=await count(db, Lead),
        lead_events=await count(db, LeadEvent),
        checkouts=await count(db, ShopifyCheckout),
        customers=await count(db, PlatformCustomer),
    )


async def events_of(db: Database, source: str | None = None) -> list[Event]:
    async with db.session() as s:
        stmt = select(Event).order_by(Event.received_at, Event.id)
        if source is not None:
            stmt = stmt.where(Event.source == source)
        return list((await s.execute(stmt)).scalars())


async def leads_of(db: Database) -> list[Lead]:
    async with db.session() as s:
        return list((await s.execute(select(Lead).order_by(Lead.id))).scalars())


async def checkout_row(db: Database, token: str) -> ShopifyCheckout | None:
    async with db.session() as s:
        stmt = select(ShopifyCheckout).where(ShopifyCheckout.token == token)
        return (await s.execute(stmt)).scalar_one_or_none()


# --- integrations API ------------------------------------------------------------------


async def configure(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    platform: str,
    secret: str,
    validation_key: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"secret": secret}
    if validation_key is not None:
        body["validation_key"] = validation_key
    response = await client.put(f"/v1/integrations/{platform}", json=body, headers=auth(account))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _post_json(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    platform: str,
    payload: dict[str, Any] | bytes,
    headers: dict[str, str] | None,
    signed: Callable[[bytes], dict[str, str]],
) -> httpx.Response:
    """``payload`` (as JSON unless bytes) to the platform's webhook, with ``headers`` or else
    the ones ``signed`` makes for the raw body."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = headers if headers is not None else signed(raw)
    return await client.post(f"/v1/webhooks/{account['id']}/{platform}", content=raw, headers=sent)


def unix(clock: ManualClock, **delta: float) -> int:
    return int((clock.now() + dt.timedelta(**delta)).timestamp())


# --- Stripe ----------------------------------------------------------------------------


def stripe_signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def stripe_headers(
    body: bytes, timestamp: int, secret: str = STRIPE_SECRET, *, extra_v1: tuple[str, ...] = ()
) -> dict[str, str]:
    parts = [f"t={timestamp}", f"v1={stripe_signature(secret, timestamp, body)}"]
    parts += [f"v1={sig}" for sig in extra_v1]
    parts.append("v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
    return {"Stripe-Signature": ",".join(parts), "Content-Type": "application/json"}


def stripe_event(
    type: str, obj: dict[str, Any], created: int, *, event_id: str | None = None
) -> dict[str, Any]:
    """A Stripe ``Event`` as delivered to webhook endpoints."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def checkout_session(
    *,
    session_id: str = "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
    status: str = "expired",
    email: str | None = "jenny.rosen@example.com",
    name: str | None = "Jenny Rosen",
    country: str | None = "DE",
    locale: str | None = "de",
    currency: str = "eur",
    amount_total: int = 4900,
    customer: str | None = "cus_NffrFeUfNV2Hib",
    recovery_url: str | None = "https://buy.stripe.com/r/test_aEU3cNfxmcKIfmM4gg",
    line_items: bool = True,
) -> dict[str, Any]:
    """Modelled on Stripe's Checkout Session object (``line_items`` only when expanded)."""
    session: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": (
            {
                "recovery": {
                    "allow_promotion_codes": False,
                    "enabled": True,
                    "expires_at": 1768910400,
                    "url": recovery_url,
                }
            }
            if recovery_url
            else None
        ),
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "cancel_url": "https://shop.example.com/cancel",
        "client_reference_id": None,
        "currency": currency,
        "customer": customer,
        "customer_creation": "if_required",
        "customer_details": (
            {
                "address": {
                    "city": "Berlin",
                    "country": country,
                    "line1": "Unter den Linden 1",
                    "line2": None,
                    "postal_code": "10117",
                    "state": None,
                },
                "email": email,
                "name": name,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            if email or name
            else None
        ),
        "customer_email": None,
        "expires_at": 1768478400,
        "livemode": False,
        "locale": locale,
        "metadata": {},
        "mode": "payment",
        "payment_intent": None,
        "payment_status": "paid" if status == "complete" else "unpaid",
        "status": status,
        "success_url": "https://shop.example.com/success",
        "url": None,
    }
    if line_items:
        session["line_items"] = {
            "object": "list",
            "data": [
                {
                    "id": "li_1NhQrGLkdIwHu7ixQ6lOqM5o",
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": amount_total,
                    "amount_tax": 0,
                    "amount_total": amount_total,
                    "currency": currency,
                    "description": "Pro plan",
                    "price": {
                        "id": "price_1NhQqtLkdIwHu7ixVpd4wdTb",
                        "object": "price",
                        "currency": currency,
                        "product": "prod_OUPfZ3QxLjV0dT",
                        "unit_amount": amount_total,
                        "nickname": None,
                    },
                    "quantity": 1,
                }
            ],
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }
    return session


def subscription(
    *,
    subscription_id: str = "sub_1MowQVLkdIwHu7ixeRlqHVzs",
    customer: str = "cus_NffrFeUfNV2Hib",
    trial_end: int = 1768824000,
) -> dict[str, Any]:
    """Modelled on Stripe's Subscription object: a customer id, no email."""
    return {
        "id": subscription_id,
        "object": "subscription",
        "cancel_at_period_end": False,
        "currency": "usd",
        "customer": customer,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_NcLYdDxLHxlFo7",
                    "object": "subscription_item",
                    "price": {
                        "id": "price_1MowQULkdIwHu7ixraBm864M",
                        "object": "price",
                        "currency": "usd",
                        "product": "prod_NbL8gB8TzmTKxn",
                        "nickname": "Pro monthly",
                        "recurring": {"interval": "month", "interval_count": 1},
                        "unit_amount": 1999,
                    },
                    "quantity": 1,
                }
            ],
        },
        "status": "trialing",
        "trial_end": trial_end,
        "trial_start": trial_end - 14 * 86400,
    }


def invoice(
    *,
    subscription_id: str | None = "sub_1MowQVLkdIwHu7ixeRlqHVzs",
    new_api: bool = False,
    customer: str = "cus_NffrFeUfNV2Hib",
    email: str | None = "jenny.rosen@example.com",
    amount: int = 1999,
    status: str = "open",
    hosted_invoice_url: str | None = None,
    invoice_id: str | None = "in_1MtHbELkdIwHu7ixl4OzzPMv",
) -> dict[str, Any]:
    """Modelled on Stripe's Invoice object (``subscription`` before API 2025-03-31,
    ``parent.subscription_details.subscription`` since)."""
    data: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "amount_remaining": 0 if status == "paid" else amount,
        "billing_reason": "subscription_cycle",
        "currency": "usd",
        "customer": customer,
        "customer_address": {"country": "US", "postal_code": "94103"},
        "customer_email": email,
        "customer_name": "Jenny Rosen",
        "hosted_invoice_url": hosted_invoice_url,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": "il_1MtHbELkdIwHu7ixtVBKKkUb",
                    "object": "line_item",
                    "amount": amount,
                    "currency": "usd",
                    "description": "1 \u00d7 Pro monthly (at $19.99 / month)",
                    "price": {
                        "id": "price_1MowQULkdIwHu7ixraBm864M",
                        "product": "prod_NbL8gB8TzmTKxn",
                        "unit_amount": amount,
                    },
                    "quantity": 1,
                }
            ],
        },
        "next_payment_attempt": 1768824000,
        "period_end": 1768824000,
        "status": status,
    }
    if new_api:
        data["parent"] = {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription_id, "metadata": {}},
        }
    else:
        data["subscription"] = subscription_id
    return data


async def post_stripe(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    event: dict[str, Any] | bytes,
    clock: ManualClock,
    *,
    timestamp: int | None = None,
    secret: str = STRIPE_SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    ts = unix(clock) if timestamp is None else timestamp
    return await _post_json(
        client, account, "stripe", event, headers, lambda raw: stripe_headers(raw, ts, secret)
    )


# --- Shopify ---------------------------------------------------------------------------


def b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_headers(
    body: bytes, topic: str, *, webhook_id: str | None = None, secret: str = SHOPIFY_SECRET
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": b64_hmac(secret, body),
        "X-Shopify-Shop-Domain": "acme-shop.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-01-15T12:00:00.000000000Z",
    }


def shopify_checkout(
    clock: ManualClock,
    *,
    token: str = CHECKOUT_TOKEN,
    email: str | None = "bob.norman@example.com",
    updated_minutes_ago: float = 0,
    total_price: str = "398.00",
    currency: str = "USD",
    customer_locale: str | None = "en-CA",
    completed_at: str | None = None,
) -> dict[str, Any]:
    """Modelled on Shopify's ``checkouts/create`` webhook example."""
    created = clock.now() - dt.timedelta(minutes=updated_minutes_ago + 5)
    updated = clock.now() - dt.timedelta(minutes=updated_minutes_ago)
    return {
        "id": 981820079255243537,
        "token": token,
        "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
        "email": email,
        "gateway": None,
        "buyer_accepts_marketing": False,
        "created_at": iso(created, -5),
        "updated_at": iso(updated, -5),
        "landing_site": None,
        "note": None,
        "note_attributes": [],
        "referring_site": None,
        "shipping_lines": [],
        "taxes_included": False,
        "total_weight": 400,
        "currency": currency,
        "completed_at": completed_at,
        "closed_at": None,
        "user_id": None,
        "location_id": None,
        "source_identifier": None,
        "source_url": None,
        "device_id": None,
        "phone": None,
        "customer_locale": customer_locale,
        "line_items": [
            {
                "applied_discounts": [],
                "discount_allocations": [],
                "key": "a9d7b7d05b5b2d03f6c6a1e8b6d1f3f4",
                "destination_location_id": None,
                "fulfillment_service": "manual",
                "gift_card": False,
                "grams": 200,
                "presentment_title": "IPod Nano - 8GB",
                "presentment_variant_title": "Pink",
                "product_id": 632910392,
                "properties": None,
                "quantity": 2,
                "requires_shipping": True,
                "sku": "IPOD2008PINK",
                "tax_lines": [],
                "taxable": True,
                "title": "IPod Nano - 8GB",
                "variant_id": 808950810,
                "variant_title": "Pink",
                "variant_price": "199.00",
                "vendor": "Apple",
                "user_id": None,
                "unit_price_measurement": None,
                "rank": None,
                "compare_at_price": None,
                "line_price": "398.00",
                "price": "199.00",
            }
        ],
        "name": "#981820079255243537",
        "source": None,
        "abandoned_checkout_url": (
            f"https://acme-shop.myshopify.com/59910226/checkouts/{token}/recover?key=ab12cd34"
        ),
        "discount_codes": [],
        "tax_lines": [],
        "source_name": "web",
        "presentment_currency": currency,
        "buyer_accepts_sms": False,
        "sms_marketing_phone": None,
        "total_discounts": "0.00",
        "total_line_items_price": total_price,
        "total_price": total_price,
        "total_tax": "0.00",
        "subtotal_price": total_price,
        "total_duties": None,
        "reservation_token": None,
        "billing_address": {
            "first_name": "Bob",
            "address1": "Chestnut Street 92",
            "phone": "+1(502)-459-2181",
            "city": "Louisville",
            "zip": "40202",
            "province": "Kentucky",
            "country": "United States",
            "last_name": "Norman",
            "address2": "",
            "company": None,
            "latitude": None,
            "longitude": None,
            "name": "Bob Norman",
            "country_code": "US",
            "province_code": "KY",
        },
        "shipping_address": {
            "first_name": "Bob",
            "last_name": "Norman",
            "country": "Canada",
            "country_code": "CA",
        },
        "customer": {
            "id": 603851970716743426,
            "email": email,
            "accepts_marketing": False,
            "first_name": "Bob",
            "last_name": "Norman",
            "state": "disabled",
            "currency": currency,
        },
    }


def shopify_order(
    clock: ManualClock,
    *,
    checkout_token: str | None = CHECKOUT_TOKEN,
    email: str | None = "bob.norman@example.com",
    total_price: str = "398.00",
    financial_status: str = "paid",
) -> dict[str, Any]:
    """Modelled on Shopify's ``orders/create`` webhook example."""
    return {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "browser_ip": None,
        "buyer_accepts_marketing": True,
        "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
        "checkout_id": 901414060,
        "checkout_token": checkout_token,
        "confirmation_number": "FXNS6M4K7",
        "contact_email": email,
        "created_at": iso(clock.now(), -5),
        "currency": "USD",
        "customer_locale": "en",
        "email": email,
        "financial_status": financial_status,
        "name": "#9999",
        "order_number": 1234,
        "processed_at": iso(clock.now(), -5),
        "subtotal_price": total_price,
        "total_price": total_price,
        "billing_address": {"first_name": "Bob", "last_name": "Norman", "country_code": "US"},
        "customer": {
            "id": 115310627314723954,
            "email": email,
            "first_name": "Bob",
            "last_name": "Norman",
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "name": "IPod Nano - 8GB - Pink",
                "price": "199.00",
                "product_id": 632910392,
                "quantity": 2,
                "sku": "IPOD2008PINK",
                "title": "IPod Nano - 8GB",
                "variant_id": 808950810,
                "variant_title": "Pink",
                "vendor": "Apple",
            }
        ],
    }


async def post_shopify(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    topic: str,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    secret: str = SHOPIFY_SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await _post_json(
        client,
        account,
        "shopify",
        payload,
        headers,
        lambda raw: shopify_headers(raw, topic, webhook_id=webhook_id, secret=secret),
    )


# --- WooCommerce -----------------------------------------------------------------------


def wc_headers(
    body: bytes,
    topic: str = "order.created",
    *,
    delivery_id: str | None = None,
    secret: str = WC_SECRET,
) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.5.1 Hookshot (WordPress/6.7.1)",
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": b64_hmac(secret, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id or hashlib.md5(uuid.uuid4().bytes).hexdigest(),  # noqa: S324
    }


def wc_order(
    clock: ManualClock,
    *,
    order_id: int = 727,
    status: str = "pending",
    email: str | None = "john.doe@example.com",
    country: str = "US",
    total: str = "29.35",
    currency: str = "USD",
) -> dict[str, Any]:
    """Modelled on the WooCommerce REST API v3 order (webhook payload)."""
    now = clock.now().astimezone(dt.UTC).replace(tzinfo=None)
    local = now - dt.timedelta(hours=3)
    paid = status in ("processing", "completed")
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "version": "9.5.1",
        "status": status,
        "currency": currency,
        "date_created": local.isoformat(timespec="seconds"),
        "date_created_gmt": now.isoformat(timespec="seconds"),
        "date_modified": local.isoformat(timespec="seconds"),
        "date_modified_gmt": now.isoformat(timespec="seconds"),
        "discount_total": "0.00",
        "shipping_total": "10.00",
        "total": total,
        "total_tax": "1.35",
        "prices_include_tax": False,
        "customer_id": 0,
        "customer_note": "",
        "billing": {
            "first_name": "John",
            "last_name": "Doe",
            "company": "",
            "address_1": "969 Market",
            "address_2": "",
            "city": "San Francisco",
            "state": "CA",
            "postcode": "94103",
            "country": country,
            "email": email,
            "phone": "(555) 555-5555",
        },
        "shipping": {"first_name": "John", "last_name": "Doe", "country": "US"},
        "payment_method": "bacs",
        "payment_method_title": "Direct Bank Transfer",
        "transaction_id": "",
        "date_paid": local.isoformat(timespec="seconds") if paid else None,
        "date_paid_gmt": now.isoformat(timespec="seconds") if paid else None,
        "date_completed": None,
        "date_completed_gmt": None,
        "cart_hash": "",
        "meta_data": [],
        "line_items": [
            {
                "id": 315,
                "name": "Woo Single #1",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 2,
                "tax_class": "",
                "subtotal": "6.00",
                "subtotal_tax": "0.45",
                "total": "6.00",
                "total_tax": "0.45",
                "taxes": [],
                "meta_data": [],
                "sku": "",
                "price": 3,
            },
            {
                "id": 316,
                "name": "Ship Your Idea &ndash; Color: Black, Size: M Test",
                "product_id": 22,
                "variation_id": 23,
                "quantity": 1,
                "subtotal": "12.00",
                "total": "12.00",
                "sku": "",
                "price": 12,
            },
        ],
        "payment_url": (
            f"https://shop.example.com/checkout/order-pay/{order_id}/"
            "?pay_for_order=true&key=wc_order_58d2d042d1d"
        ),
        "currency_symbol": "$",
    }


async def post_wc(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    payload: dict[str, Any] | bytes,
    topic: str = "order.created",
    *,
    delivery_id: str | None = None,
    secret: str = WC_SECRET,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await _post_json(
        client,
        account,
        "woocommerce",
        payload,
        headers,
        lambda raw: wc_headers(raw, topic, delivery_id=delivery_id, secret=secret),
    )


# --- PayPro Global ---------------------------------------------------------------------


def paypro_hash(order_id: str, secret: str = PAYPRO_SECRET) -> str:
    return hashlib.md5((order_id + secret).encode()).hexdigest()  # noqa: S324


def paypro_signature(fields: dict[str, str], validation_key: str = PAYPRO_VALIDATION_KEY) -> str:
    signed = (
        fields.get("ORDER_ID", "")
        + fields.get("ORDER_STATUS", "")
        + fields.get("ORDER_TOTAL_AMOUNT", "")
        + fields.get("CUSTOMER_EMAIL", "")
        + validation_key
        + fields.get("TEST_MODE", "")
        + fields.get("IPN_TYPE_NAME", "")
    )
    return hashlib.sha256(signed.encode()).hexdigest()


IPN_TYPE_IDS = {
    "OrderCharged": "1",
    "OrderRefunded": "2",
    "SubscriptionChargeSucceed": "6",
    "SubscriptionChargeFailed": "7",
    "SubscriptionRenewed": "9",
    "SubscriptionTerminated": "10",
    "TrialCharge": "13",
    "OrderOnWaiting": "14",
}


def paypro_ipn(
    ipn: str = "OrderCharged",
    *,
    order_id: str = "18645102",
    email: str = "maria.garcia@example.com",
    total: str = "49.99",
    currency: str = "EUR",
    subscription_id: str | None = None,
    test_mode: bool = False,
    resent: bool = False,
    signed: bool = True,
    **extra: str,
) -> dict[str, str]:
    """An IPN as PayPro Global posts it (form fields), with HASH and SIGNATURE."""
    fields = {
        "IPN_TYPE_ID": IPN_TYPE_IDS.get(ipn, "99"),
        "IPN_TYPE_NAME": ipn,
        "ORDER_ID": order_id,
        "ORDER_STATUS_ID": "5",
        "ORDER_STATUS": "Processed" if ipn != "OrderOnWaiting" else "Waiting",
        "ORDER_TOTAL_AMOUNT": "0" if test_mode else total,
        "ORDER_TOTAL_AMOUNT_WITH_TAXES": "0" if test_mode else total,
        "ORDER_CURRENCY_CODE": currency,
        "ORDER_PLACED_TIME_UTC": "01/15/2026 12:00:00",
        "PAYMENT_METHOD_NAME": "Visa",
        "PRODUCT_ID": "71234",
        "ORDER_ITEM_NAME": "PhotoMagic Pro",
        "ORDER_ITEM_SKU": "PMP-1Y",
        "ORDER_ITEM_UNIT_PRICE": "0" if test_mode else total,
        "PRODUCT_QUANTITY": "1",
        "CUSTOMER_ID": "4410082",
        "CUSTOMER_FIRST_NAME": "María",
        "CUSTOMER_LAST_NAME": "García",
        "CUSTOMER_EMAIL": email,
        "CUSTOMER_COUNTRY_CODE": "ES",
        "CUSTOMER_COUNTRY_NAME": "Spain",
        "CUSTOMER_LANGUAGE_CODE": "es",
        "TEST_MODE": "1" if test_mode else "0",
        "IS_RESENT": "1" if resent else "0",
    }
    if subscription_id is not None:
        fields["SUBSCRIPTION_ID"] = subscription_id
        fields["SUBSCRIPTION_STATUS_NAME"] = "Active"
    fields.update(extra)
    fields["HASH"] = hashlib.md5(b"1").hexdigest() if test_mode else paypro_hash(order_id)  # noqa: S324
    if signed:
        fields["SIGNATURE"] = paypro_signature(fields)
    return fields


async def post_paypro(
    client: httpx.AsyncClient, account: dict[str, Any], fields: dict[str, str] | bytes
) -> httpx.Response:
    raw = fields if isinstance(fields, bytes) else urlencode(fields).encode()
    return await client.post(
        f"/v1/webhooks/{account['id']}/paypro",
        content=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
