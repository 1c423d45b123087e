"""POST /v1/webhooks/{account_id}/events: malformed and invalid bodies are refused whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ingest.helpers import assert_nothing_written, counts
from tests.support.api import PROBLEM_KEYS, assert_problem, error_fields, get_lead
from tests.support.events import event_body, post_event


@pytest.mark.parametrize(
    "raw",
    [b'{"type": "checkout.abandoned",', b"", b"not json", b"\xff\xfe\x00garbage", b"{'a': 1}"],
    ids=["truncated", "empty", "text", "bad-utf8", "single-quotes"],
)
async def test_malformed_json_is_422_naming_the_body(client, account, clock, db, raw):
    response = await post_event(client, account, raw, clock=clock)
    problem = assert_problem(response, 422, "malformed_json", with_errors=True, complete=True)
    assert problem["errors"][0]["field"] == "body"
    await assert_nothing_written(db)


async def test_json_that_is_not_utf8_is_422(client, account, clock, db):
    """JSON on the wire is UTF-8 (RFC 8259 §8.1); UTF-16 is refused, not a server error."""
    for encoding in ("utf-16", "utf-16-le", "utf-32"):
        raw = json.dumps(event_body()).encode(encoding)
        response = await post_event(client, account, raw, clock=clock)
        problem = assert_problem(response, 422, "malformed_json", with_errors=True, complete=True)
        assert problem["errors"][0]["field"] == "body"
    await assert_nothing_written(db)


async def test_utf8_byte_order_mark_is_tolerated(client, account, clock, db):
    raw = b"\xef\xbb\xbf" + json.dumps(event_body()).encode()
    response = await post_event(client, account, raw, clock=clock)
    assert response.status_code == 200, response.text
    assert (await counts(db)).events == 1


@pytest.mark.parametrize("payload", [[], "event", 42, None])
async def test_json_that_is_not_an_object_is_422(client, account, clock, db, payload):
    response = await post_event(client, account, json.dumps(payload).encode(), clock=clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert error_fields(problem) == {"body"}
    await assert_nothing_written(db)


def _customer(**overrides: Any) -> dict[str, Any]:
    return {**event_body()["customer"], **overrides}


def _product(**overrides: Any) -> dict[str, Any]:
    return {**event_body()["products"][0], **overrides}


INVALID_FIELDS = [
    pytest.param({"customer": _customer(email="not-an-email")}, "customer.email", id="email"),
    pytest.param({"customer": {"first_name": "Jane"}}, "customer.email", id="email-missing"),
    pytest.param({"customer": _customer(country="QQ")}, "customer.country", id="country"),
    pytest.param({"customer": _customer(language="Deutsch!")}, "customer.language", id="lang"),
    pytest.param({"customer": _customer(timezone="Mars/Olympus")}, "customer.timezone", id="tz"),
    pytest.param({"currency": "XYZ"}, "currency", id="currency"),
    pytest.param({"currency": "EURO"}, "currency", id="currency-length"),
    pytest.param({"occurred_at": "2026-01-15T11:00:00"}, "occurred_at", id="naive-time"),
    pytest.param({"occurred_at": "yesterday"}, "occurred_at", id="bad-time"),
    pytest.param({"type": "cart.created"}, "type", id="type"),
    pytest.param({"recovery_url": "javascript:alert(1)"}, "recovery_url", id="recovery-url"),
    pytest.param(
        {"products": [_product(unit_price="cheap")]}, "products[0].unit_price", id="unit-price"
    ),
    pytest.param(
        {"products": [_product(), _product(quantity=0)]}, "products[1].quantity", id="quantity"
    ),
    pytest.param({"products": [_product(name="")]}, "products[0].name", id="product-name"),
    pytest.param({"amount": "lots"}, "amount", id="amount-not-decimal"),
    # Cross-field rules still name the offending field.
    pytest.param(
        {"amount": "10.5", "currency": "JPY", "products": []}, "amount", id="jpy-decimals"
    ),
    pytest.param({"amount": "49.001"}, "amount", id="eur-3-decimals"),
    pytest.param({"amount": "-1.00"}, "amount", id="negative"),
    pytest.param(
        {"amount": "100", "currency": "JPY", "products": [_product(unit_price="24.50")]},
        "products[0].unit_price",
        id="unit-price-decimals",
    ),
    pytest.param({"currency": None}, "currency", id="amount-without-currency"),
    pytest.param({"reference": None}, "reference", id="reference-missing"),
    pytest.param(
        {"type": "order.completed", "reference": None}, "reference", id="order-reference-missing"
    ),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID_FIELDS)
async def test_invalid_field_is_422_naming_it(client, account, clock, db, overrides, field):
    response = await post_event(client, account, event_body(**overrides), clock=clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert set(problem) == PROBLEM_KEYS
    assert field in error_fields(problem), problem
    for error in problem["errors"]:
        assert error["message"]
    await assert_nothing_written(db)


async def test_every_bad_field_is_named_at_once(client, account, clock, db):
    body = event_body(
        occurred_at="2026-01-15T11:00:00",
        currency="XYZ",
        customer=_customer(email="nope", country="QQ", language="??", timezone="Nowhere/Town"),
        products=[_product(), _product(unit_price="abc")],
    )
    response = await post_event(client, account, body, clock=clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert error_fields(problem) == {
        "occurred_at",
        "currency",
        "customer.email",
        "customer.country",
        "customer.language",
        "customer.timezone",
        "products[1].unit_price",
    }
    await assert_nothing_written(db)


async def test_every_cross_field_problem_is_named_at_once(client, account, clock, db):
    body = event_body(
        reference=None,
        currency=None,
        amount="10.5",
        products=[_product(unit_price="1.5")],
    )
    response = await post_event(client, account, body, clock=clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert error_fields(problem) == {"reference", "currency"}
    await assert_nothing_written(db)


async def test_opt_in_needs_no_reference_or_price(client, account, clock, db):
    body = event_body(type="lead.opt_in", reference=None, amount=None, currency=None, products=[])
    response = await post_event(client, account, body, clock=clock)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"customer": _customer(first_name="Ja\u0000ne")}, "customer.first_name"),
        ({"reference": "chk\u0000"}, "reference"),
        ({"attributes": {"note": "a\u0000b"}}, "attributes.note"),
        ({"attributes": {"tags": ["ok", "\ud800"]}}, "attributes.tags[1]"),
        ({"attributes": {"k\u0000": 1}}, "attributes"),
    ],
    ids=["nul-name", "nul-reference", "nul-attribute", "lone-surrogate", "nul-key"],
)
async def test_text_no_database_can_store_is_422(client, account, clock, db, overrides, field):
    """U+0000 and unpaired surrogates are valid JSON escapes but not storable text
    (PostgreSQL refuses them); they are a client error on every backend, never a 500."""
    response = await post_event(client, account, event_body(**overrides), clock=clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert field in error_fields(problem), problem
    await assert_nothing_written(db)


async def test_deeply_nested_json_is_422_not_a_crash(client, account, clock, db):
    for depth in (200, 5000):
        raw = json.dumps(event_body(attributes={"x": "@"})).replace(
            '"@"', "[" * depth + "]" * depth
        )
        response = await post_event(client, account, raw.encode(), clock=clock)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    await assert_nothing_written(db)


async def test_reasonably_nested_attributes_are_kept(client, account, clock, db):
    nested = {"a": {"b": {"c": [1, {"d": "e"}]}}, "emoji": "\U0001f6d2"}
    response = await post_event(client, account, event_body(attributes=nested), clock=clock)
    assert response.status_code == 200, response.text
    lead = await get_lead(client, account, response.json()["lead_id"])
    assert lead["attributes"] == nested
