"""Odd but signed values: never a 500; what can be dropped is dropped, the rest is a 422."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integrations.helpers import (
    NOTHING,
    PAYPRO_SECRET,
    PAYPRO_VALIDATION_KEY,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WC_SECRET,
    checkout_session,
    configure,
    paypro_ipn,
    paypro_signature,
    post_paypro,
    post_shopify,
    post_stripe,
    post_wc,
    shopify_checkout,
    stripe_event,
    stripe_headers,
    subscription,
    unix,
    wc_order,
    written,
)


@pytest.fixture
async def everything(client, account):
    await configure(client, account, "stripe", STRIPE_SECRET)
    await configure(client, account, "shopify", SHOPIFY_SECRET)
    await configure(client, account, "woocommerce", WC_SECRET)
    await configure(client, account, "paypro", PAYPRO_SECRET, PAYPRO_VALIDATION_KEY)
    return account


def _session(**changes: Any) -> dict[str, Any]:
    session = checkout_session()
    session.update(changes)
    return session


STRIPE_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("huge created", {"created": 10**30}, 200),
    ("negative created", {"created": -(10**12)}, 200),
    ("float created", {"created": 1.5}, 200),
    ("huge amount", {"obj": _session(amount_total=10**40)}, 200),
    ("amount as string", {"obj": _session(amount_total="49.00")}, 200),
    ("unknown currency", {"obj": _session(currency="xyz")}, 200),
    ("currency not a string", {"obj": _session(currency=["eur"])}, 200),
    ("locale garbage", {"obj": _session(locale="x" * 300)}, 200),
    ("long id", {"obj": _session(id="cs_" + "a" * 400)}, 200),
    (
        "recovery not a url",
        {"obj": _session(after_expiration={"recovery": {"url": "javascript:x"}})},
        200,
    ),
    ("customer_details a list", {"obj": _session(customer_details=[1])}, 200),
    (
        "line_items odd",
        {"obj": _session(line_items={"data": [1, {"quantity": "²"}, {"quantity": -4}]})},
        200,
    ),
    (
        "very long email",
        {"obj": _session(customer_details={"email": "a" * 400 + "@example.com"})},
        422,
    ),
    ("id not a string", {"id": {"x": 1}}, 422),
]


@pytest.mark.parametrize(
    ("name", "change", "status"), STRIPE_CASES, ids=[c[0] for c in STRIPE_CASES]
)
async def test_stripe_odd_values(client, everything, clock, db, name, change, status):
    event = stripe_event(
        "checkout.session.expired", change.get("obj", checkout_session()), unix(clock)
    )
    event.update({k: v for k, v in change.items() if k != "obj"})
    response = await post_stripe(client, everything, event, clock)
    assert response.status_code == status, response.text
    if status != 200:
        assert await written(db) == NOTHING


async def test_stripe_subscription_with_odd_items(client, everything, clock, db):
    sub = subscription()
    sub["items"]["data"][0]["quantity"] = 10**30
    sub["trial_end"] = 10**20
    response = await post_stripe(
        client,
        everything,
        stripe_event("customer.subscription.trial_will_end", sub, unix(clock)),
        clock,
    )
    assert response.status_code == 200, response.text


# Starlette decodes headers as latin-1: superscript digits pass str.isdigit() but not int().
@pytest.mark.parametrize("timestamp", ["\u00b2", "\u00b9\u00b3", "-5", "1e9", ""])
async def test_stripe_odd_timestamps_are_401(client, everything, clock, db, timestamp):
    raw = json.dumps(
        stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    ).encode()
    headers = stripe_headers(raw, unix(clock))
    value = headers["Stripe-Signature"].replace(f"t={unix(clock)}", f"t={timestamp}")
    sent: dict[str, Any] = {**headers, "Stripe-Signature": value.encode("latin-1")}
    response = await post_stripe(client, everything, raw, clock, headers=sent)
    assert response.status_code == 401, response.text


SHOPIFY_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("year one with offset", {"created_at": "0001-01-01T00:00:00+05:00", "updated_at": None}, 200),
    ("year 9999", {"updated_at": "9999-12-31T23:59:59-05:00"}, 200),
    ("garbage dates", {"created_at": "yesterday", "updated_at": 5}, 200),
    ("naive date", {"updated_at": "2026-01-15T12:00:00"}, 200),
    ("quantity superscript", {"line_items": [{"title": "A", "quantity": "²", "price": "x"}]}, 200),
    ("line_items not a list", {"line_items": {"a": 1}}, 200),
    ("price negative", {"total_price": "-5.00"}, 200),
    ("price NaN", {"total_price": "NaN"}, 200),
    ("price sNaN", {"total_price": "sNaN"}, 200),
    ("price huge exponent", {"total_price": "1e999999999"}, 200),
    ("token too long", {"token": "t" * 300}, 422),
    ("token a number", {"token": 12345}, 200),
    ("token an object", {"token": {"x": 1}}, 422),
]


@pytest.mark.parametrize(
    ("name", "change", "status"), SHOPIFY_CASES, ids=[c[0] for c in SHOPIFY_CASES]
)
async def test_shopify_odd_values(client, everything, clock, db, name, change, status):
    payload = shopify_checkout(clock)
    payload.update(change)
    response = await post_shopify(client, everything, "checkouts/update", payload)
    assert response.status_code == status, response.text


WC_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("status not a string", {"status": ["pending"]}, 200),
    ("dates garbage", {"date_modified_gmt": "0000-00-00 00:00:00", "date_created_gmt": None}, 200),
    ("total with many decimals", {"total": "29.3549999"}, 200),
    ("billing not an object", {"billing": "x"}, 200),
    ("id as float", {"id": 1.5}, 422),
    ("payment_url relative", {"payment_url": "/checkout/order-pay/1"}, 200),
]


@pytest.mark.parametrize(("name", "change", "status"), WC_CASES, ids=[c[0] for c in WC_CASES])
async def test_woocommerce_odd_values(client, everything, clock, db, name, change, status):
    order = wc_order(clock)
    order.update(change)
    response = await post_wc(client, everything, order)
    assert response.status_code == status, response.text


PAYPRO_CASES: list[tuple[str, dict[str, str], int]] = [
    ("quantity superscript", {"PRODUCT_QUANTITY": "²"}, 200),
    ("amount garbage", {"ORDER_TOTAL_AMOUNT": "9,99 €"}, 200),
    ("currency garbage", {"ORDER_CURRENCY_CODE": "euro"}, 200),
    ("long subscription id", {"SUBSCRIPTION_ID": "9" * 500}, 200),
    ("long type", {"IPN_TYPE_NAME": "X" * 500, "IPN_TYPE_ID": "Y" * 500}, 200),
    ("empty email", {"CUSTOMER_EMAIL": ""}, 200),
]


@pytest.mark.parametrize(
    ("name", "change", "status"), PAYPRO_CASES, ids=[c[0] for c in PAYPRO_CASES]
)
async def test_paypro_odd_values(client, everything, db, name, change, status):
    fields = paypro_ipn("OrderOnWaiting")
    fields.update(change)
    fields["SIGNATURE"] = paypro_signature(fields)
    response = await post_paypro(client, everything, fields)
    assert response.status_code == status, response.text
