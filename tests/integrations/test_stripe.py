"""POST /v1/webhooks/{account_id}/stripe: Stripe-Signature, mapping, customer emails."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from leadflow.integrations.formats import stripe as stripe_format
from tests.integrations.helpers import (
    NOTHING,
    STRIPE_SECRET,
    Written,
    checkout_session,
    events_of,
    invoice,
    leads_of,
    post_stripe,
    stripe_event,
    stripe_headers,
    stripe_signature,
    subscription,
    unix,
    written,
)
from tests.support.api import assert_problem, auth, error_fields

pytestmark = pytest.mark.usefixtures("stripe_account")


# --- signatures -------------------------------------------------------------------------


def test_signature_is_hex_hmac_of_timestamp_dot_body_keyed_with_the_secret_string():
    body = b'{"id":"evt_1","type":"ping"}'
    # Computed independently: the whsec_ string itself is the key (no base64 decoding).
    assert stripe_format.signature(STRIPE_SECRET, 1768478400, body) == stripe_signature(
        STRIPE_SECRET, 1768478400, body
    )
    # printf '1614265330.{}' | openssl dgst -sha256 -hmac 'whsec_test_secret'
    assert stripe_format.signature("whsec_test_secret", 1614265330, b"{}") == (
        "8c1a00c47d6b9f72cbeb1c009e324419d877cb08edb0805dd9fde8dddc59848c"
    )


async def test_valid_signature_is_accepted(client, account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["duplicate"] is False and result["ignored"] is False
    assert result["type"] == "checkout.abandoned"
    assert result["lead_status"] == "open"


async def test_one_of_several_v1_signatures_may_match(client, account, clock, db):
    raw = json.dumps(stripe_event("checkout.session.expired", checkout_session(), unix(clock)))
    body = raw.encode()
    ts = unix(clock)
    stale = stripe_signature("whsec_rolled_secret", ts, body)
    headers = stripe_headers(body, ts, extra_v1=(stale,))
    value = headers["Stripe-Signature"]
    # Put the stale one first: every v1 is checked.
    parts = value.split(",")
    headers["Stripe-Signature"] = ",".join([parts[0], parts[2], parts[1], parts[3]])
    response = await post_stripe(client, account, body, clock, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "mutate",
    [
        "wrong_secret",
        "tampered_body",
        "no_header",
        "empty_header",
        "no_timestamp",
        "no_v1",
        "only_v0",
        "base64_decoded_key",
        "other_timestamp",
    ],
)
async def test_bad_signature_is_401_and_writes_nothing(client, account, clock, db, mutate):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    body = json.dumps(event).encode()
    ts = unix(clock)
    sig = stripe_signature(STRIPE_SECRET, ts, body)
    header = {
        "wrong_secret": f"t={ts},v1={stripe_signature('whsec_wrong', ts, body)}",
        "tampered_body": f"t={ts},v1={stripe_signature(STRIPE_SECRET, ts, body + b' ')}",
        "no_header": None,
        "empty_header": "",
        "no_timestamp": f"v1={sig}",
        "no_v1": f"t={ts}",
        "only_v0": f"t={ts},v0={sig}",
        "base64_decoded_key": f"t={ts},v1={_decoded_key_signature(ts, body)}",
        "other_timestamp": f"t={ts + 1},v1={sig}",
    }[mutate]
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    response = await post_stripe(client, account, body, clock, headers=headers)
    assert_problem(response, 401, "invalid_signature", detailed=True)
    assert await written(db) == NOTHING


def _decoded_key_signature(ts: int, body: bytes) -> str:
    """What a Standard Webhooks verifier would compute: the wrong key for Stripe."""
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(STRIPE_SECRET.removeprefix("whsec_") + "==")
    return hmac.new(key, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
async def test_timestamp_outside_the_tolerance_is_refused(client, account, clock, db, offset):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, account, event, clock, timestamp=unix(clock) + offset)
    assert_problem(response, 401, "timestamp_out_of_tolerance", detailed=True)
    assert await written(db) == NOTHING


@pytest.mark.parametrize("offset", [-300, 300])
async def test_timestamp_at_the_edge_is_accepted(client, account, clock, db, offset):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, account, event, clock, timestamp=unix(clock) + offset)
    assert response.status_code == 200, response.text


async def test_a_replay_later_than_the_tolerance_is_refused(client, account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    raw = json.dumps(event).encode()
    headers = stripe_headers(raw, unix(clock))
    clock.advance(seconds=301)
    response = await post_stripe(client, account, raw, clock, headers=headers)
    assert_problem(response, 401, "timestamp_out_of_tolerance", detailed=True)
    assert await written(db) == NOTHING


# --- errors ----------------------------------------------------------------------------


async def test_no_secret_configured_is_409(client, other_account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, other_account, event, clock)
    problem = assert_problem(response, 409, "integration_not_configured", detailed=True)
    assert "PUT /v1/integrations/stripe" in problem["detail"]
    assert await written(db) == NOTHING


async def test_unknown_account_is_404(client, account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    response = await post_stripe(client, {"id": "acc_nope"}, event, clock)
    assert_problem(response, 404, "not_found", detailed=True)


async def test_body_over_the_limit_is_413(small_client, account, clock, db):
    from tests.integrations.helpers import configure

    await configure(small_client, account, "stripe", STRIPE_SECRET)
    session = checkout_session()
    session["metadata"] = {"padding": "x" * 4000}
    event = stripe_event("checkout.session.expired", session, unix(clock))
    response = await post_stripe(small_client, account, event, clock)
    assert_problem(response, 413, "payload_too_large", detailed=True)
    assert await written(db) == NOTHING


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'"evt"', "body"),
        (b'\xff\xfe{"id": 1}', "body"),
        (json.dumps({"type": "checkout.session.expired", "created": 1}).encode(), "id"),
        (json.dumps({"id": "evt_1", "created": 1}).encode(), "type"),
        (
            json.dumps({"id": "evt_1", "type": "checkout.session.expired", "data": {}}).encode(),
            "data.object",
        ),
        (
            json.dumps(
                {"id": "evt_1", "type": "checkout.session.expired", "data": {"object": {"x": 1}}}
            ).encode(),
            "data.object.id",
        ),
        (json.dumps({"id": "evt_\u0000", "type": "invoice.paid"}).encode(), "id"),
    ],
)
async def test_malformed_body_is_422_and_writes_nothing(client, account, clock, db, body, field):
    response = await post_stripe(client, account, body, clock)
    assert response.status_code == 422, response.text
    assert field in error_fields(response.json())
    assert await written(db) == NOTHING


async def test_malformed_email_is_422(client, account, clock, db):
    session = checkout_session(email="not-an-email")
    event = stripe_event("checkout.session.expired", session, unix(clock))
    response = await post_stripe(client, account, event, clock)
    problem = assert_problem(response, 422, "validation_error", detailed=True)
    assert error_fields(problem) == {"data.object.customer_details.email"}
    assert await written(db) == NOTHING


# --- mapping ---------------------------------------------------------------------------


async def test_expired_checkout_becomes_an_abandoned_checkout_lead(client, account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock, minutes=-2))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    lead = (
        await client.get(f"/v1/leads/{response.json()['lead_id']}", headers=auth(account))
    ).json()
    assert lead["source_type"] == "abandoned_checkout"
    assert lead["reference"] == event["data"]["object"]["id"]
    assert lead["customer"] == {
        "email": "jenny.rosen@example.com",
        "first_name": "Jenny",
        "last_name": "Rosen",
        "language": "de",
        "country": "DE",
        "timezone": None,
    }
    assert lead["amount"] == "49.00" and lead["currency"] == "EUR"
    assert lead["recovery_url"] == "https://buy.stripe.com/r/test_aEU3cNfxmcKIfmM4gg"
    assert lead["products"] == [
        {"id": "prod_OUPfZ3QxLjV0dT", "name": "Pro plan", "quantity": 1, "unit_price": "49.00"}
    ]
    assert lead["attributes"] == {"stripe_customer": "cus_NffrFeUfNV2Hib"}
    assert lead["captured_at"] == "2026-01-15T11:58:00Z"
    [stored] = await events_of(db, "stripe")
    assert stored.external_id == event["id"]
    assert stored.type == "checkout.abandoned"
    assert json.loads(stored.raw_body) == event


@pytest.mark.parametrize(
    ("currency", "amount_total", "expected"),
    [("jpy", 5000, "5000"), ("kwd", 12345, "12.345"), ("isk", 990000, "9900"), ("usd", 1, "0.01")],
)
async def test_minor_units_follow_the_currency_exponent(
    client, account, clock, db, currency, amount_total, expected
):
    session = checkout_session(currency=currency, amount_total=amount_total, line_items=False)
    event = stripe_event("checkout.session.expired", session, unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    [lead] = await leads_of(db)
    assert lead.currency == currency.upper()
    assert lead.amount == Decimal(expected)


async def test_unusable_locale_and_country_are_dropped(client, account, clock, db):
    session = checkout_session(locale="auto", country="ZZ", name="Cher")
    event = stripe_event("checkout.session.expired", session, unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    [lead] = await leads_of(db)
    assert (lead.language, lead.country, lead.first_name, lead.last_name) == (
        None,
        None,
        "Cher",
        None,
    )


async def test_customer_email_field_and_no_recovery(client, account, clock, db):
    session = checkout_session(email=None, name=None, recovery_url=None, customer=None)
    session["customer_email"] = "guest@example.com"
    event = stripe_event("checkout.session.expired", session, unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    [lead] = await leads_of(db)
    assert lead.email == "guest@example.com" and lead.recovery_url is None


async def test_expired_checkout_without_email_is_ignored_and_recorded(client, account, clock, db):
    session = checkout_session(email=None, name=None, customer=None)
    event = stripe_event("checkout.session.expired", session, unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] is True
    assert response.json()["reason"] == "customer email unknown"
    assert await written(db) == Written(1, 0, 0, 0, 0)


async def test_completed_checkout_converts_the_abandoned_one(client, account, clock, db):
    expired = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    lead_id = (await post_stripe(client, account, expired, clock)).json()["lead_id"]
    clock.advance(hours=3)
    session = checkout_session(session_id="cs_test_b2", status="complete", recovery_url=None)
    completed = stripe_event("checkout.session.completed", session, unix(clock))
    response = await post_stripe(client, account, completed, clock)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.completed"
    assert response.json()["converted_lead_ids"] == [lead_id]


async def test_trial_subscription_email_comes_from_a_learned_customer(client, account, clock, db):
    # Unknown customer: recorded and ignored, with the reason.
    trial = stripe_event("customer.subscription.trial_will_end", subscription(), unix(clock))
    response = await post_stripe(client, account, trial, clock)
    assert response.status_code == 200, response.text
    assert response.json() == {
        **response.json(),
        "ignored": True,
        "reason": "customer email unknown",
        "type": "customer.subscription.trial_will_end",
    }
    [stored] = await events_of(db, "stripe")
    assert stored.type == "customer.subscription.trial_will_end"
    assert stored.result["ignored"] is True

    # A checkout session of that customer teaches leadflow the email behind cus_….
    session = checkout_session(session_id="cs_test_sub", status="complete")
    await post_stripe(
        client, account, stripe_event("checkout.session.completed", session, unix(clock)), clock
    )
    trial2 = stripe_event(
        "customer.subscription.trial_will_end",
        subscription(subscription_id="sub_2"),
        unix(clock),
    )
    response = await post_stripe(client, account, trial2, clock)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "trial.started"
    lead = (
        await client.get(f"/v1/leads/{response.json()['lead_id']}", headers=auth(account))
    ).json()
    assert lead["source_type"] == "trial"
    assert lead["reference"] == "sub_2"
    assert lead["customer"]["email"] == "jenny.rosen@example.com"
    assert lead["customer"]["first_name"] == "Jenny"
    assert lead["amount"] == "19.99" and lead["currency"] == "USD"
    assert lead["attributes"]["trial_end"] == "2026-01-19T12:00:00Z"
    assert lead["products"][0]["name"] == "Pro monthly"


async def test_customer_events_teach_the_email(client, account, clock, db):
    customer = {
        "id": "cus_NffrFeUfNV2Hib",
        "object": "customer",
        "email": "Jenny.Rosen@Example.com",
        "name": "Jenny Rosen",
    }
    response = await post_stripe(
        client, account, stripe_event("customer.created", customer, unix(clock)), clock
    )
    assert response.json()["ignored"] is True
    trial = stripe_event("customer.subscription.trial_will_end", subscription(), unix(clock))
    response = await post_stripe(client, account, trial, clock)
    assert response.json()["type"] == "trial.started", response.text
    [lead] = await leads_of(db)
    assert lead.email == "jenny.rosen@example.com"


async def test_learned_customers_are_per_account(client, account, other_account, clock, db):
    from tests.integrations.helpers import configure

    await configure(client, other_account, "stripe", STRIPE_SECRET)
    session = checkout_session(status="complete")
    await post_stripe(
        client, account, stripe_event("checkout.session.completed", session, unix(clock)), clock
    )
    trial = stripe_event("customer.subscription.trial_will_end", subscription(), unix(clock))
    response = await post_stripe(client, other_account, trial, clock)
    assert response.json()["reason"] == "customer email unknown"
    # The same Stripe event id in two accounts is two deliveries.
    response = await post_stripe(client, account, trial, clock)
    assert response.json()["type"] == "trial.started"
    assert response.json()["duplicate"] is False


@pytest.mark.parametrize("new_api", [False, True])
async def test_upcoming_invoice_is_a_renewal_and_paid_invoice_converts_it(
    client, account, clock, db, new_api
):
    upcoming = invoice(new_api=new_api, invoice_id=None)
    response = await post_stripe(
        client, account, stripe_event("invoice.upcoming", upcoming, unix(clock)), clock
    )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "renewal.due"
    lead = (
        await client.get(f"/v1/leads/{response.json()['lead_id']}", headers=auth(account))
    ).json()
    assert lead["source_type"] == "renewal"
    assert lead["reference"] == "sub_1MowQVLkdIwHu7ixeRlqHVzs"
    assert lead["amount"] == "19.99"
    assert lead["customer"]["country"] == "US"
    assert lead["attributes"]["renews_at"] == "2026-01-19T12:00:00Z"

    clock.advance(days=4)
    paid = invoice(new_api=new_api, status="paid")
    response = await post_stripe(
        client, account, stripe_event("invoice.paid", paid, unix(clock)), clock
    )
    assert response.json()["type"] == "order.completed"
    assert response.json()["converted_lead_ids"] == [lead["id"]]


async def test_zero_amount_invoice_is_not_a_purchase(client, account, clock, db):
    trial_invoice = invoice(status="paid", amount=0)
    response = await post_stripe(
        client, account, stripe_event("invoice.paid", trial_invoice, unix(clock)), clock
    )
    assert response.json()["ignored"] is True
    assert response.json()["reason"] == "zero-amount invoice"
    assert (await written(db)).leads == 0


async def test_failed_invoice_is_an_unfinished_order_with_the_hosted_invoice(
    client, account, clock, db
):
    failed = invoice(
        hosted_invoice_url="https://invoice.stripe.com/i/acct_1M2JTkLkdIwHu7ix/test_YWNjdF8x"
    )
    response = await post_stripe(
        client, account, stripe_event("invoice.payment_failed", failed, unix(clock)), clock
    )
    assert response.json()["type"] == "order.unfinished", response.text
    [lead] = await leads_of(db)
    assert lead.source_type == "unfinished_order"
    assert lead.reference == "sub_1MowQVLkdIwHu7ixeRlqHVzs"
    assert lead.recovery_url.startswith("https://invoice.stripe.com/i/")


async def test_invoice_email_unknown_is_ignored(client, account, clock, db):
    upcoming = invoice(email=None, customer="cus_unknown")
    response = await post_stripe(
        client, account, stripe_event("invoice.upcoming", upcoming, unix(clock)), clock
    )
    assert response.json()["ignored"] is True
    assert response.json()["reason"] == "customer email unknown"


@pytest.mark.parametrize(
    "type_", ["payment_intent.succeeded", "charge.refunded", "customer.subscription.deleted"]
)
async def test_unused_types_are_ignored_and_recorded(client, account, clock, db, type_):
    event = stripe_event(type_, {"id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "x"}, unix(clock))
    response = await post_stripe(client, account, event, clock)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "event_id": response.json()["event_id"],
        "type": type_,
        "duplicate": False,
        "ignored": True,
        "reason": None,
        "lead_id": None,
        "lead_status": None,
        "converted_lead_ids": [],
        "checkout": None,
    }
    [stored] = await events_of(db)
    assert (stored.source, stored.external_id, stored.type) == ("stripe", event["id"], type_)
    assert stored.result == {"event_id": stored.id, "type": type_, "ignored": True, "reason": None}
    assert stored.occurred_at == clock.now()


# --- idempotency ----------------------------------------------------------------------


async def test_redelivery_answers_the_first_result_and_writes_nothing(client, account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock))
    first = await post_stripe(client, account, event, clock)
    clock.advance(minutes=10)
    again = await post_stripe(client, account, event, clock)
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert await written(db) == Written(events=1, leads=1, lead_events=1, checkouts=0, customers=1)


async def test_redelivery_of_an_ignored_event_is_a_duplicate(client, account, clock, db):
    event = stripe_event("charge.succeeded", {"id": "ch_1"}, unix(clock))
    first = (await post_stripe(client, account, event, clock)).json()
    again = (await post_stripe(client, account, event, clock)).json()
    assert again == {**first, "duplicate": True}
    assert (await written(db)).events == 1


async def test_stripe_ids_do_not_collide_with_other_sources(client, account, clock, db):
    """The same id under another source is another delivery (dedup is per platform)."""
    from tests.support.events import event_body, post_event

    event = stripe_event(
        "checkout.session.expired", checkout_session(), unix(clock), event_id="evt_same"
    )
    await post_stripe(client, account, event, clock)
    response = await post_event(client, account, event_body(), msg_id="evt_same", clock=clock)
    assert response.json()["duplicate"] is False
    assert (await written(db)).events == 2


async def test_event_time_is_never_in_the_future(client, account, clock, db):
    event = stripe_event("checkout.session.expired", checkout_session(), unix(clock, hours=5))
    event_time = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
    await post_stripe(client, account, event, clock)
    [lead] = await leads_of(db)
    assert lead.captured_at == event_time
