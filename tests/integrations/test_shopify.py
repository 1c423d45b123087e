"""POST /v1/webhooks/{account_id}/shopify and the checkout abandonment job."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal

import pytest

from leadflow.integrations.formats import shopify as shopify_format
from leadflow.integrations.shopify import abandon_due_checkouts
from leadflow.worker import build_worker
from tests.integrations.helpers import (
    NOTHING,
    SHOPIFY_SECRET,
    Written,
    checkout_row,
    events_of,
    leads_of,
    post_shopify,
    shopify_checkout,
    shopify_headers,
    shopify_order,
    written,
)
from tests.support.api import assert_problem, auth, error_fields

pytestmark = pytest.mark.usefixtures("shopify_account")

WINDOW = dt.timedelta(days=7)
TOKEN = "2e7d9bfb3b7a5ac4d6b4e5f02c6a1a8e"


async def abandon(db, clock, **kw):
    return await abandon_due_checkouts(db, clock, WINDOW, **kw)


# --- signatures -------------------------------------------------------------------------


def test_signature_is_base64_hmac_of_the_raw_body():
    # printf '{"id":"1"}' | openssl dgst -sha256 -hmac 'shpss_test' -binary | base64
    assert shopify_format.signature("shpss_test", b'{"id":"1"}') == (
        "PiTQ9vx6e3YtzvhgVePU5xKgSlCl9NTcnqjQZHJcQ5I="
    )


@pytest.mark.parametrize("mutate", ["wrong_secret", "missing", "tampered", "hex_instead"])
async def test_bad_signature_is_401(client, account, clock, db, mutate):
    raw = json.dumps(shopify_checkout(clock)).encode()
    headers = shopify_headers(raw, "checkouts/create")
    if mutate == "wrong_secret":
        headers = shopify_headers(raw, "checkouts/create", secret="another-app-secret")
    elif mutate == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    elif mutate == "tampered":
        raw = raw.replace(b"398.00", b"1.00")
    else:
        import hashlib
        import hmac

        headers["X-Shopify-Hmac-Sha256"] = hmac.new(
            SHOPIFY_SECRET.encode(), raw, hashlib.sha256
        ).hexdigest()
    response = await post_shopify(client, account, "checkouts/create", raw, headers=headers)
    assert_problem(response, 401, "invalid_signature", detailed=True)
    assert await written(db) == NOTHING


async def test_no_secret_is_409(client, other_account, clock, db):
    response = await post_shopify(
        client, other_account, "checkouts/create", shopify_checkout(clock)
    )
    assert_problem(response, 409, "integration_not_configured", detailed=True)
    assert await written(db) == NOTHING


@pytest.mark.parametrize(
    ("remove", "body", "field"),
    [
        ("X-Shopify-Topic", None, "X-Shopify-Topic"),
        ("X-Shopify-Webhook-Id", None, "X-Shopify-Webhook-Id"),
        (None, b"{oops", "body"),
        (None, b"[1, 2]", "body"),
        (None, json.dumps({"email": "bob@example.com"}).encode(), "token"),
    ],
)
async def test_malformed_delivery_is_422(client, account, clock, db, remove, body, field):
    raw = body if body is not None else json.dumps(shopify_checkout(clock)).encode()
    headers = shopify_headers(raw, "checkouts/create")
    if remove:
        del headers[remove]
    response = await post_shopify(client, account, "checkouts/create", raw, headers=headers)
    assert response.status_code == 422, response.text
    assert field in error_fields(response.json())
    assert await written(db) == NOTHING


async def test_event_id_header_is_the_fallback_idempotency_key(client, account, clock, db):
    raw = json.dumps(shopify_checkout(clock)).encode()
    headers = shopify_headers(raw, "checkouts/create")
    del headers["X-Shopify-Webhook-Id"]
    headers["X-Shopify-Event-Id"] = "98880550-7158-44d4-b7cd-2c97c8a091b5"
    first = await post_shopify(client, account, "checkouts/create", raw, headers=headers)
    assert first.status_code == 200, first.text
    again = await post_shopify(client, account, "checkouts/create", raw, headers=headers)
    assert again.json() == {**first.json(), "duplicate": True}
    [event] = await events_of(db)
    assert event.external_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


# --- checkouts --------------------------------------------------------------------------


async def test_checkout_is_watched_not_yet_a_lead(client, account, clock, db):
    response = await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "checkouts/create"
    assert result["ignored"] is False and result["lead_id"] is None
    assert result["checkout"] == {
        "token": TOKEN,
        "status": "pending",
        "abandon_at": "2026-01-15T13:00:00Z",
    }
    assert await written(db) == Written(events=1, leads=0, lead_events=0, checkouts=1, customers=0)
    row = await checkout_row(db, TOKEN)
    assert row is not None
    assert (row.email, row.first_name, row.last_name) == ("bob.norman@example.com", "Bob", "Norman")
    assert row.total_price == Decimal("398.00") and row.currency == "USD"
    assert row.customer_locale == "en-CA"
    assert (row.billing_country_code, row.shipping_country_code) == ("US", "CA")
    assert row.line_items == [
        {"id": "808950810", "name": "IPod Nano - 8GB - Pink", "quantity": 2, "unit_price": "199.00"}
    ]
    assert row.event is not None and row.event["type"] == "checkout.abandoned"
    assert row.event["occurred_at"] == "2026-01-15T13:00:00Z"
    [event] = await events_of(db)
    assert (event.type, event.reference, event.email) == ("checkouts/create", TOKEN, row.email)


async def test_nothing_happens_before_the_delay(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=59)
    report = await abandon(db, clock)
    assert report.abandoned == 0
    assert (await written(db)).leads == 0


async def test_due_checkout_becomes_an_abandoned_checkout_lead(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=60)
    report = await abandon(db, clock)
    assert (report.abandoned, report.completed, report.failed) == (1, 0, 0)
    [lead] = await leads_of(db)
    view = (await client.get(f"/v1/leads/{lead.id}", headers=auth(account))).json()
    assert view["source_type"] == "abandoned_checkout"
    assert view["reference"] == TOKEN
    assert view["customer"] == {
        "email": "bob.norman@example.com",
        "first_name": "Bob",
        "last_name": "Norman",
        "language": "en-CA",
        "country": "US",
        "timezone": None,
    }
    assert view["amount"] == "398.00" and view["currency"] == "USD"
    assert view["recovery_url"].endswith(f"/checkouts/{TOKEN}/recover?key=ab12cd34")
    assert view["captured_at"] == "2026-01-15T13:00:00Z"
    events = await events_of(db, "shopify")
    assert [(e.external_id, e.type) for e in events][-1] == (
        f"abandoned:{TOKEN}",
        "checkout.abandoned",
    )
    row = await checkout_row(db, TOKEN)
    assert row is not None and (row.status, row.lead_id) == ("abandoned", lead.id)
    # The next tick finds nothing to do.
    assert (await abandon(db, clock)).abandoned == 0
    assert len(await leads_of(db)) == 1


async def test_updates_push_the_abandonment_back_and_newer_wins(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=40)
    update = shopify_checkout(clock, total_price="597.00")
    response = await post_shopify(client, account, "checkouts/update", update)
    assert response.json()["checkout"]["abandon_at"] == "2026-01-15T13:40:00Z"
    # A late, older version is stored as an event but does not overwrite the newer one.
    stale = shopify_checkout(clock, updated_minutes_ago=30, total_price="1.00")
    await post_shopify(client, account, "checkouts/update", stale)
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.total_price == Decimal("597.00")
    clock.advance(minutes=30)
    assert (await abandon(db, clock)).abandoned == 0
    clock.advance(minutes=30)
    assert (await abandon(db, clock)).abandoned == 1
    [lead] = await leads_of(db)
    assert lead.amount == Decimal("597.00")


async def test_checkout_without_email_waits_for_one(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock, email=None))
    clock.advance(hours=2)
    assert (await abandon(db, clock)).abandoned == 0
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.status == "pending" and row.event is None
    await post_shopify(client, account, "checkouts/update", shopify_checkout(clock))
    clock.advance(hours=1)
    assert (await abandon(db, clock)).abandoned == 1


async def test_later_update_without_email_keeps_the_known_one(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=5)
    await post_shopify(client, account, "checkouts/update", shopify_checkout(clock, email=None))
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.email == "bob.norman@example.com"


async def test_order_with_the_checkout_token_completes_it(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=20)
    response = await post_shopify(client, account, "orders/create", shopify_order(clock))
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.completed"
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.status == "completed"
    clock.advance(hours=2)
    assert (await abandon(db, clock)).abandoned == 0
    assert (await written(db)).leads == 0


async def test_order_without_token_completes_the_customers_checkouts(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=20)
    order = shopify_order(clock, checkout_token=None)
    response = await post_shopify(client, account, "orders/paid", order)
    assert response.status_code == 200, response.text
    [event] = [e for e in await events_of(db) if e.type == "order.completed"]
    assert event.reference == "820982911946154508"
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.status == "completed"


async def test_order_before_the_checkout_webhook_still_prevents_abandonment(
    client, account, clock, db
):
    await post_shopify(client, account, "orders/create", shopify_order(clock))
    response = await post_shopify(client, account, "checkouts/update", shopify_checkout(clock))
    assert response.json()["checkout"]["status"] == "completed"
    clock.advance(hours=2)
    assert (await abandon(db, clock)).abandoned == 0


async def test_a_completed_checkout_update_completes_it(client, account, clock, db):
    done = shopify_checkout(clock, completed_at="2026-01-15T07:00:00-05:00")
    response = await post_shopify(client, account, "checkouts/update", done)
    assert response.json()["checkout"]["status"] == "completed"


async def test_order_after_abandonment_converts_the_lead(client, account, clock, db):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    clock.advance(minutes=61)
    await abandon(db, clock)
    [lead] = await leads_of(db)
    clock.advance(hours=5)
    response = await post_shopify(client, account, "orders/paid", shopify_order(clock))
    assert response.json()["converted_lead_ids"] == [lead.id]
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.status == "abandoned"


async def test_order_without_email_is_recorded_but_still_completes_the_checkout(
    client, account, clock, db
):
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    response = await post_shopify(
        client, account, "orders/create", shopify_order(clock, email=None)
    )
    assert response.json()["ignored"] is True
    assert response.json()["reason"] == "customer email unknown"
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.status == "completed"


@pytest.mark.parametrize("topic", ["orders/fulfilled", "customers/create", "app/uninstalled"])
async def test_other_topics_are_ignored_and_recorded(client, account, clock, db, topic):
    response = await post_shopify(client, account, topic, {"id": 1})
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] is True and response.json()["type"] == topic
    [event] = await events_of(db)
    assert (event.source, event.type, event.result["ignored"]) == ("shopify", topic, True)


async def test_duplicate_checkout_delivery_writes_nothing(client, account, clock, db):
    first = await post_shopify(
        client, account, "checkouts/create", shopify_checkout(clock), webhook_id="wh-1"
    )
    clock.advance(minutes=10)
    again = await post_shopify(
        client, account, "checkouts/create", shopify_checkout(clock), webhook_id="wh-1"
    )
    assert again.json() == {**first.json(), "duplicate": True}
    row = await checkout_row(db, TOKEN)
    assert row is not None and row.abandon_at == dt.datetime(2026, 1, 15, 13, tzinfo=dt.UTC)
    assert await written(db) == Written(1, 0, 0, 1, 0)


async def test_duplicate_order_delivery_writes_nothing(client, account, clock, db):
    first = await post_shopify(
        client, account, "orders/create", shopify_order(clock), webhook_id="o-1"
    )
    again = await post_shopify(
        client, account, "orders/create", shopify_order(clock), webhook_id="o-1"
    )
    assert again.json() == {**first.json(), "duplicate": True}
    assert (await written(db)).events == 1


async def test_checkouts_are_per_account(client, account, other_account, clock, db):
    from tests.integrations.helpers import configure

    await configure(client, other_account, "shopify", "other-secret")
    await post_shopify(client, account, "checkouts/create", shopify_checkout(clock))
    # Same token in another shop: its own checkout; the other shop's order does not complete ours.
    await post_shopify(
        client, other_account, "checkouts/create", shopify_checkout(clock), secret="other-secret"
    )
    await post_shopify(
        client, other_account, "orders/create", shopify_order(clock), secret="other-secret"
    )
    clock.advance(hours=1)
    report = await abandon(db, clock)
    assert report.abandoned == 1
    [lead] = await leads_of(db)
    assert lead.account_id == account["id"]


async def test_the_worker_registers_the_job(settings, db, clock):
    worker = build_worker(settings, db, clock)
    try:
        _job, every = worker.jobs["shopify_abandonment"]
        assert every == 60
    finally:
        await worker.aclose()


async def test_concurrent_workers_abandon_each_checkout_once(client, account, clock, db, backend):
    tokens = [f"tok{i:03d}" for i in range(12)]
    for token in tokens:
        payload = shopify_checkout(clock, token=token, email=f"{token}@example.com")
        response = await post_shopify(client, account, "checkouts/create", payload)
        assert response.status_code == 200, response.text
    clock.advance(hours=1)
    reports = await asyncio.gather(*(abandon(db, clock) for _ in range(4)))
    assert sum(r.abandoned for r in reports) == len(tokens)
    assert sum(r.failed for r in reports) == 0
    leads = await leads_of(db)
    assert sorted(lead.reference for lead in leads) == tokens
    abandoned_events = [e for e in await events_of(db) if e.external_id.startswith("abandoned:")]
    assert len(abandoned_events) == len(tokens)
