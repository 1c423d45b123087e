"""POST /v1/webhooks/{account_id}/paypro: HASH and SIGNATURE, IPN types, resends."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from leadflow.integrations.formats import Credentials
from leadflow.integrations.formats import paypro as paypro_format
from tests.integrations.helpers import (
    NOTHING,
    PAYPRO_SECRET,
    Written,
    events_of,
    leads_of,
    paypro_hash,
    paypro_ipn,
    paypro_signature,
    post_paypro,
    written,
)
from tests.support.api import assert_problem, auth, error_fields

pytestmark = pytest.mark.usefixtures("paypro_account")


# --- verification -----------------------------------------------------------------------


def test_signature_concatenates_the_documented_fields_in_order():
    # PayPro's documented example: sha256("12345Processed9.99123qwerty1OrderCharged").
    fields = {
        "ORDER_ID": "12345",
        "ORDER_STATUS": "Processed",
        "ORDER_TOTAL_AMOUNT": "9.99",
        "CUSTOMER_EMAIL": "",
        "TEST_MODE": "1",
        "IPN_TYPE_NAME": "OrderCharged",
    }
    expected = hashlib.sha256(b"12345Processed9.99123qwerty1OrderCharged").hexdigest()
    assert paypro_format.signature(fields, "123qwerty") == expected


def test_hash_is_md5_of_order_id_and_secret():
    assert paypro_format.order_hash("12345", "secret") == hashlib.md5(b"12345secret").hexdigest()  # noqa: S324


def test_verification_rules():
    creds = Credentials("sk", "vk")
    live = {"ORDER_ID": "7", "ORDER_STATUS": "Processed", "TEST_MODE": "0"}
    live["HASH"] = paypro_format.order_hash("7", "sk").upper()  # hex is case-insensitive
    paypro_format.verify(live, creds)  # HASH alone is enough
    paypro_format.verify({**live, "SIGNATURE": paypro_format.signature(live, "vk")}, creds)
    with pytest.raises(Exception, match="SIGNATURE"):
        paypro_format.verify({**live, "SIGNATURE": "0" * 64}, creds)
    test = {**live, "TEST_MODE": "1", "HASH": hashlib.md5(b"1").hexdigest()}  # noqa: S324
    with pytest.raises(Exception, match="Test orders"):
        paypro_format.verify(test, creds)
    paypro_format.verify({**test, "SIGNATURE": paypro_format.signature(test, "vk")}, creds)
    with pytest.raises(Exception, match="HASH"):
        paypro_format.verify({**live, "HASH": paypro_format.order_hash("8", "sk")}, creds)


async def test_live_ipn_is_accepted(client, account, db):
    response = await post_paypro(client, account, paypro_ipn())
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.completed"


async def test_live_ipn_without_signature_field_is_accepted_on_its_hash(client, account, db):
    response = await post_paypro(client, account, paypro_ipn(signed=False))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "mutate", ["wrong_hash", "no_hash", "bad_signature", "tampered_email", "other_order_hash"]
)
async def test_bad_authentication_is_401(client, account, db, mutate):
    fields = paypro_ipn()
    if mutate == "wrong_hash":
        fields["HASH"] = paypro_hash("18645102", "wrong-secret")
    elif mutate == "no_hash":
        del fields["HASH"]
    elif mutate == "bad_signature":
        fields["SIGNATURE"] = paypro_signature(fields, "wrong-validation-key")
    elif mutate == "tampered_email":
        fields["CUSTOMER_EMAIL"] = "attacker@example.com"  # HASH still valid, SIGNATURE not
    else:
        fields["HASH"] = paypro_hash("1", PAYPRO_SECRET)
    response = await post_paypro(client, account, fields)
    assert_problem(response, 401, "invalid_signature", detailed=True)
    assert await written(db) == NOTHING


async def test_test_order_needs_a_valid_signature(client, account, db):
    forged = paypro_ipn(test_mode=True, signed=False)
    assert forged["HASH"] == hashlib.md5(b"1").hexdigest()  # noqa: S324
    response = await post_paypro(client, account, forged)
    problem = assert_problem(response, 401, "invalid_signature", detailed=True)
    assert "SIGNATURE" in problem["detail"]
    assert await written(db) == NOTHING

    signed = paypro_ipn("OrderOnWaiting", test_mode=True)
    response = await post_paypro(client, account, signed)
    assert response.status_code == 200, response.text
    [lead] = await leads_of(db)
    assert lead.attributes["test_mode"] is True


async def test_no_secret_is_409(client, other_account, db):
    response = await post_paypro(client, other_account, paypro_ipn())
    assert_problem(response, 409, "integration_not_configured", detailed=True)
    assert await written(db) == NOTHING


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfeORDER_ID=1", b"ORDER_ID=%ff%fe&HASH=x", b"ORDER_ID=1\x00&HASH=2"],
)
async def test_malformed_form_is_422(client, account, db, body):
    response = await post_paypro(client, account, body)
    assert response.status_code == 422, response.text
    assert await written(db) == NOTHING


async def test_nul_in_a_field_is_422(client, account, db):
    fields = paypro_ipn()
    fields["CUSTOMER_FIRST_NAME"] = "Mar\x00ia"
    response = await post_paypro(client, account, fields)
    assert response.status_code == 422, response.text
    assert "CUSTOMER_FIRST_NAME" in error_fields(response.json())
    assert await written(db) == NOTHING


async def test_malformed_email_is_422(client, account, db):
    response = await post_paypro(client, account, paypro_ipn(email="maria@@example"))
    problem = assert_problem(response, 422, "validation_error", detailed=True)
    assert error_fields(problem) == {"CUSTOMER_EMAIL"}
    assert await written(db) == NOTHING


async def test_missing_type_is_422(client, account, db):
    fields = paypro_ipn()
    del fields["IPN_TYPE_NAME"]
    fields["SIGNATURE"] = paypro_signature(fields)
    response = await post_paypro(client, account, fields)
    assert "IPN_TYPE_NAME" in error_fields(response.json())
    assert await written(db) == NOTHING


# --- mapping ---------------------------------------------------------------------------


async def test_waiting_order_is_an_unfinished_order_and_the_charge_converts_it(
    client, account, clock, db
):
    response = await post_paypro(client, account, paypro_ipn("OrderOnWaiting"))
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "order.unfinished"
    lead = (
        await client.get(f"/v1/leads/{response.json()['lead_id']}", headers=auth(account))
    ).json()
    assert lead["source_type"] == "unfinished_order"
    assert lead["reference"] == "18645102"
    assert lead["customer"] == {
        "email": "maria.garcia@example.com",
        "first_name": "María",
        "last_name": "García",
        "language": "es",
        "country": "ES",
        "timezone": None,
    }
    assert lead["amount"] == "49.99" and lead["currency"] == "EUR"
    assert lead["products"] == [
        {"id": "71234", "name": "PhotoMagic Pro", "quantity": 1, "unit_price": "49.99"}
    ]
    clock.advance(hours=1)
    response = await post_paypro(client, account, paypro_ipn("OrderCharged"))
    assert response.json()["converted_lead_ids"] == [lead["id"]]


async def test_trial_order_is_a_trial_lead_by_subscription(client, account, clock, db):
    ipn = paypro_ipn(
        "OrderCharged",
        subscription_id="990011",
        IS_ON_TRIAL_PERIOD="1",
        TRIAL_PERIOD_TILL="2026-01-29",
    )
    response = await post_paypro(client, account, ipn)
    assert response.json()["type"] == "trial.started", response.text
    [lead] = await leads_of(db)
    assert (lead.source_type, lead.reference) == ("trial", "990011")
    assert lead.attributes["trial_period_till"] == "2026-01-29"
    clock.advance(days=14)
    charge = paypro_ipn("SubscriptionChargeSucceed", order_id="18645999", subscription_id="990011")
    response = await post_paypro(client, account, charge)
    assert response.json()["converted_lead_ids"] == [lead.id]


async def test_trial_charge_is_a_trial(client, account, db):
    response = await post_paypro(client, account, paypro_ipn("TrialCharge", subscription_id="77"))
    assert response.json()["type"] == "trial.started"


async def test_failed_renewal_is_an_unfinished_order_for_the_subscription(
    client, account, clock, db
):
    failed = paypro_ipn("SubscriptionChargeFailed", order_id="20001", subscription_id="990011")
    response = await post_paypro(client, account, failed)
    assert response.json()["type"] == "order.unfinished"
    [lead] = await leads_of(db)
    assert (lead.source_type, lead.reference) == ("unfinished_order", "990011")
    clock.advance(days=1)
    renewed = paypro_ipn("SubscriptionRenewed", order_id="20002", subscription_id="990011")
    response = await post_paypro(client, account, renewed)
    assert response.json()["converted_lead_ids"] == [lead.id]


@pytest.mark.parametrize("ipn", ["OrderRefunded", "SubscriptionTerminated", "LicenseRequested"])
async def test_other_ipn_types_are_ignored_and_recorded(client, account, db, ipn):
    response = await post_paypro(client, account, paypro_ipn(ipn))
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] is True and response.json()["type"] == ipn
    [event] = await events_of(db)
    assert (event.source, event.type) == ("paypro", ipn)
    assert event.external_id.startswith("18645102:")


async def test_unusable_codes_are_dropped(client, account, db):
    ipn = paypro_ipn(CUSTOMER_COUNTRY_CODE="XK", CUSTOMER_LANGUAGE_CODE="Spanish")
    response = await post_paypro(client, account, ipn)
    assert response.status_code == 200, response.text
    [event] = await events_of(db)
    assert event.amount == Decimal("49.99")


# --- idempotency ----------------------------------------------------------------------


async def test_resent_ipn_is_a_duplicate_of_the_first(client, account, db):
    first = await post_paypro(client, account, paypro_ipn("OrderOnWaiting"))
    resent = await post_paypro(client, account, paypro_ipn("OrderOnWaiting", resent=True))
    assert resent.status_code == 200, resent.text
    assert resent.json() == {**first.json(), "duplicate": True}
    assert await written(db) == Written(1, 1, 1, 0, 0)
    [event] = await events_of(db)
    assert event.external_id == "18645102:14"
    assert "IS_RESENT=0" in event.raw_body


async def test_same_order_other_ipn_type_is_another_delivery(client, account, db):
    await post_paypro(client, account, paypro_ipn("OrderOnWaiting"))
    await post_paypro(client, account, paypro_ipn("OrderCharged"))
    assert (await written(db)).events == 2


async def test_raw_form_is_stored(client, account, db):
    fields = paypro_ipn()
    await post_paypro(client, account, fields)
    [event] = await events_of(db)
    assert event.raw_body == urlencode(fields)
