"""POST /v1/webhooks/{account_id}/woocommerce: ping, signature, order statuses."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.integrations.helpers import (
    NOTHING,
    Written,
    events_of,
    leads_of,
    post_wc,
    wc_headers,
    wc_order,
    written,
)
from tests.support.api import assert_problem, auth, error_fields

pytestmark = pytest.mark.usefixtures("wc_account")


async def _ping(client, account):
    return await client.post(
        f"/v1/webhooks/{account['id']}/woocommerce",
        content=b"webhook_id=12",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "WooCommerce/9.5.1 Hookshot (WordPress/6.7.1)",
        },
    )


async def test_activation_ping_answers_200_and_writes_nothing(client, account, db):
    response = await _ping(client, account)
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] is True
    assert response.json()["event_id"] is None
    assert await written(db) == NOTHING


async def test_ping_works_before_the_secret_is_set(client, other_account, db):
    """WooCommerce pings when the webhook is saved, maybe before leadflow has its secret."""
    response = await _ping(client, other_account)
    assert response.status_code == 200, response.text
    assert await written(db) == NOTHING


async def test_ping_to_an_unknown_account_is_404(client, db):
    response = await _ping(client, {"id": "acc_missing"})
    assert_problem(response, 404, "not_found", detailed=True)


async def test_unsigned_non_ping_is_401(client, account, clock, db):
    raw = b"webhook_id=12&status=pending"
    response = await post_wc(client, account, raw, headers={"X-WC-Webhook-Topic": "order.created"})
    assert_problem(response, 401, "invalid_signature", detailed=True)
    assert await written(db) == NOTHING


@pytest.mark.parametrize("mutate", ["wrong_secret", "tampered", "blank"])
async def test_bad_signature_is_401(client, account, clock, db, mutate):
    raw = json.dumps(wc_order(clock)).encode()
    headers = wc_headers(
        raw, secret="not-the-secret" if mutate == "wrong_secret" else "Zk9#wc-webhook-secret"
    )
    if mutate == "tampered":
        raw = raw.replace(b'"29.35"', b'"0.01"')
    if mutate == "blank":
        headers["X-WC-Webhook-Signature"] = " "
    response = await post_wc(client, account, raw, headers=headers)
    assert_problem(response, 401, "invalid_signature", detailed=True)
    assert await written(db) == NOTHING


async def test_no_secret_is_409(client, other_account, clock, db):
    response = await post_wc(client, other_account, wc_order(clock))
    assert_problem(response, 409, "integration_not_configured", detailed=True)
    assert await written(db) == NOTHING


@pytest.mark.parametrize(
    ("body", "remove", "field"),
    [
        (b"{", None, "body"),
        (b"null", None, "body"),
        (json.dumps({"status": "pending"}).encode(), None, "id"),
        (None, "X-WC-Webhook-Delivery-ID", "X-WC-Webhook-Delivery-ID"),
        (None, "X-WC-Webhook-Topic", "X-WC-Webhook-Topic"),
    ],
)
async def test_malformed_delivery_is_422(client, account, clock, db, body, remove, field):
    raw = body if body is not None else json.dumps(wc_order(clock)).encode()
    headers = wc_headers(raw)
    if remove:
        del headers[remove]
    response = await post_wc(client, account, raw, headers=headers)
    assert response.status_code == 422, response.text
    assert field in error_fields(response.json())
    assert await written(db) == NOTHING


async def test_malformed_email_is_422(client, account, clock, db):
    response = await post_wc(client, account, wc_order(clock, email="john@"))
    problem = assert_problem(response, 422, "validation_error", detailed=True)
    assert error_fields(problem) == {"billing.email"}
    assert await written(db) == NOTHING


@pytest.mark.parametrize("status", ["pending", "failed", "on-hold"])
async def test_unpaid_orders_are_unfinished_order_leads(client, account, clock, db, status):
    response = await post_wc(client, account, wc_order(clock, status=status))
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.unfinished"
    lead = (
        await client.get(f"/v1/leads/{response.json()['lead_id']}", headers=auth(account))
    ).json()
    assert lead["source_type"] == "unfinished_order"
    assert lead["reference"] == "727"
    assert lead["customer"]["email"] == "john.doe@example.com"
    assert (lead["customer"]["first_name"], lead["customer"]["last_name"]) == ("John", "Doe")
    assert lead["customer"]["country"] == "US"
    assert lead["amount"] == "29.35" and lead["currency"] == "USD"
    assert lead["recovery_url"] == (
        "https://shop.example.com/checkout/order-pay/727/?pay_for_order=true&key=wc_order_58d2d042d1d"
    )
    assert lead["products"] == [
        {"id": "93", "name": "Woo Single #1", "quantity": 2, "unit_price": "3.00"},
        {
            "id": "23",
            "name": "Ship Your Idea &ndash; Color: Black, Size: M Test",
            "quantity": 1,
            "unit_price": "12.00",
        },
    ]
    assert lead["attributes"]["woocommerce_status"] == status


@pytest.mark.parametrize("status", ["processing", "completed"])
async def test_paid_order_converts_the_unfinished_one(client, account, clock, db, status):
    first = await post_wc(client, account, wc_order(clock, status="pending"))
    lead_id = first.json()["lead_id"]
    clock.advance(hours=2)
    response = await post_wc(client, account, wc_order(clock, status=status), "order.updated")
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.completed"
    assert response.json()["converted_lead_ids"] == [lead_id]


@pytest.mark.parametrize("status", ["cancelled", "refunded", "checkout-draft", "trash"])
async def test_other_statuses_are_ignored_and_recorded(client, account, clock, db, status):
    response = await post_wc(client, account, wc_order(clock, status=status), "order.updated")
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] is True
    assert status in response.json()["reason"]
    [event] = await events_of(db)
    assert (event.source, event.type, event.reference) == ("woocommerce", "order.updated", "727")
    assert (await written(db)).leads == 0


@pytest.mark.parametrize("topic", ["product.updated", "customer.created", "order.deleted"])
async def test_other_topics_are_ignored(client, account, clock, db, topic):
    response = await post_wc(client, account, {"id": 93, "name": "Woo Single #1"}, topic)
    assert response.json()["ignored"] is True
    assert (await written(db)).events == 1


async def test_bad_country_and_unknown_currency_are_dropped(client, account, clock, db):
    order = wc_order(clock, country="XX", currency="ZZZ")
    response = await post_wc(client, account, order)
    assert response.status_code == 200, response.text
    [lead] = await leads_of(db)
    assert (lead.country, lead.currency, lead.amount) == (None, None, None)
    assert all(p["unit_price"] is None for p in lead.products)


async def test_derived_unit_prices_are_rounded_to_the_currency(client, account, clock, db):
    order = wc_order(clock)
    order["line_items"][0]["price"] = 7.333333333333333
    await post_wc(client, account, order)
    [lead] = await leads_of(db)
    assert lead.products[0]["unit_price"] == "7.33"
    assert lead.amount == Decimal("29.35")


async def test_order_without_email_is_recorded_and_ignored(client, account, clock, db):
    response = await post_wc(client, account, wc_order(clock, email=""))
    assert response.status_code == 200, response.text
    assert response.json()["reason"] == "customer email unknown"
    assert await written(db) == Written(1, 0, 0, 0, 0)


async def test_redelivery_is_a_duplicate(client, account, clock, db):
    order = wc_order(clock)
    first = await post_wc(client, account, order, delivery_id="5d3d9a0a6c8b3b1f")
    again = await post_wc(client, account, order, delivery_id="5d3d9a0a6c8b3b1f")
    assert again.json() == {**first.json(), "duplicate": True}
    assert await written(db) == Written(1, 1, 1, 0, 0)
    # A new delivery of the same order (another id) updates the same lead.
    await post_wc(client, account, order, "order.updated")
    assert await written(db) == Written(2, 1, 2, 0, 0)
