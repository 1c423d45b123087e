"""GET /v1/leads (filters, pagination) and GET /v1/leads/{id}."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import httpx
import pytest

from tests.support.api import assert_problem, auth, get_lead
from tests.support.events import at, capture, event_body, ingest, iso, post_event, purchase

LIST_FIELDS = {
    "id",
    "source_type",
    "status",
    "reference",
    "customer",
    "products",
    "amount",
    "currency",
    "recovery_url",
    "attributes",
    "captured_at",
    "converted_at",
}


async def list_leads(
    client: httpx.AsyncClient, account: dict[str, Any], **params: Any
) -> dict[str, Any]:
    response = await client.get("/v1/leads", params=params, headers=auth(account))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


async def ids(client: httpx.AsyncClient, account: dict[str, Any], **params: Any) -> list[str]:
    body = await list_leads(client, account, **params)
    assert body["next_cursor"] is None
    return [lead["id"] for lead in body["items"]]


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# -- detail -------------------------------------------------------------------------------


async def test_lead_detail_has_every_field_and_its_events(client, account, clock):
    response = await post_event(client, account, event_body(), clock=clock)
    assert response.status_code == 200, response.text
    result = response.json()

    lead = await get_lead(client, account, result["lead_id"])
    assert lead == {
        "id": result["lead_id"],
        "source_type": "abandoned_checkout",
        "status": "open",
        "reference": "chk_1",
        "customer": {
            "email": "jane@example.com",
            "first_name": "Jane",
            "last_name": "Doe",
            "language": "de",
            "country": "DE",
            "timezone": "Europe/Berlin",
        },
        "products": [{"id": "sku-1", "name": "Pro plan", "quantity": 2, "unit_price": "24.50"}],
        "amount": "49.00",
        "currency": "EUR",
        "recovery_url": "https://shop.example.com/recover/chk_1",
        "attributes": {"utm_source": "newsletter"},
        "captured_at": "2026-01-15T11:00:00Z",
        "converted_at": None,
        "events": [
            {
                "id": result["event_id"],
                "type": "checkout.abandoned",
                "source": "generic",
                "role": "capture",
                "occurred_at": "2026-01-15T11:00:00Z",
                "received_at": "2026-01-15T12:00:00Z",
            }
        ],
        "sequence": None,  # no campaign took it
        "conversion": None,
    }


async def test_list_items_are_the_detail_without_events(client, account, clock):
    lead_id = await capture(client, account, clock)
    detail = await get_lead(client, account, lead_id)
    items = (await list_leads(client, account))["items"]
    assert len(items) == 1
    assert set(items[0]) == LIST_FIELDS
    detail_only = {"events", "sequence", "conversion"}
    assert items[0] == {k: v for k, v in detail.items() if k not in detail_only}


async def test_timestamps_are_rfc3339_utc_whatever_offset_was_sent(client, account, clock):
    lead_id = await capture(client, account, clock, occurred_at="2026-01-15T12:30:00+02:00")
    lead = await get_lead(client, account, lead_id)
    assert lead["captured_at"] == "2026-01-15T10:30:00Z"
    assert lead["events"][0]["occurred_at"] == "2026-01-15T10:30:00Z"
    assert dt.datetime.fromisoformat(lead["captured_at"]).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("amount", "currency", "unit_price", "shown_amount", "shown_price"),
    [
        ("49", "EUR", "49", "49.00", "49"),
        ("49.5", "USD", "49.5", "49.50", "49.5"),
        ("5000", "JPY", "5000", "5000", "5000"),
        ("12.345", "KWD", "12.345", "12.345", "12.345"),
        ("0", "EUR", "0.00", "0.00", "0.00"),
    ],
)
async def test_amount_is_a_decimal_string_in_the_currency_precision(
    client, account, clock, amount, currency, unit_price, shown_amount, shown_price
):
    lead_id = await capture(
        client,
        account,
        clock,
        amount=amount,
        currency=currency,
        products=[{"id": "p", "name": "P", "quantity": 1, "unit_price": unit_price}],
    )
    lead = await get_lead(client, account, lead_id)
    assert lead["amount"] == shown_amount
    assert lead["currency"] == currency
    assert lead["products"][0]["unit_price"] == shown_price


async def test_lead_without_money_has_null_amount_and_currency(client, account, clock):
    lead_id = await capture(
        client,
        account,
        clock,
        amount=None,
        currency=None,
        products=[],
        recovery_url=None,
        attributes={},
    )
    lead = await get_lead(client, account, lead_id)
    assert lead["amount"] is None
    assert lead["currency"] is None
    assert lead["products"] == []
    assert lead["recovery_url"] is None
    assert lead["attributes"] == {}


async def test_update_and_conversion_show_in_events(client, account, clock):
    lead_id = await capture(client, account, clock, occurred_at=at(15, 10))
    await capture(client, account, clock, occurred_at=at(15, 10, 30), amount="60.00")
    converted = await purchase(client, account, clock, occurred_at=at(15, 11), bare=False)
    assert converted == [lead_id]

    lead = await get_lead(client, account, lead_id)
    assert lead["status"] == "converted"
    assert lead["amount"] == "60.00"
    assert lead["captured_at"] == "2026-01-15T10:00:00Z"
    assert lead["converted_at"] == "2026-01-15T11:00:00Z"
    assert [(e["type"], e["role"], e["occurred_at"]) for e in lead["events"]] == [
        ("checkout.abandoned", "capture", "2026-01-15T10:00:00Z"),
        ("checkout.abandoned", "update", "2026-01-15T10:30:00Z"),
        ("order.completed", "conversion", "2026-01-15T11:00:00Z"),
    ]


@pytest.mark.parametrize("lead_id", ["lead_00000000000000000000000000", "nope", "%00", "x" * 500])
async def test_unknown_lead_is_404(client, account, clock, lead_id):
    await capture(client, account, clock)
    response = await client.get(f"/v1/leads/{lead_id}", headers=auth(account))
    assert_problem(response, 404, code="not_found", typed=True, titled=True)


# -- filters ------------------------------------------------------------------------------


@pytest.fixture
async def sample(client, account, clock) -> dict[str, str]:
    """Five leads of different kinds, captured on different days."""
    leads = {
        "alice_cart": await capture(
            client,
            account,
            clock,
            reference="chk_a",
            email="Alice@Example.com",
            customer={"country": "DE", "language": "de"},
            occurred_at=at(10),
        ),
        "bob_trial": await capture(
            client,
            account,
            clock,
            type="trial.started",
            reference="sub_b",
            email="bob@example.com",
            customer={"country": "FR", "language": "fr"},
            occurred_at=at(11),
        ),
        "carol_renewal": await capture(
            client,
            account,
            clock,
            type="renewal.due",
            reference="sub_c",
            email="carol@example.com",
            customer={"country": "US", "language": "en-US"},
            occurred_at=at(12),
        ),
        "alice_order": await capture(
            client,
            account,
            clock,
            type="order.unfinished",
            reference="ord_a",
            email="alice@example.com",
            customer={"country": "AT", "language": "de-AT"},
            occurred_at=at(13),
        ),
        "dave_cart": await capture(
            client,
            account,
            clock,
            reference="chk_d",
            email="dave@example.com",
            customer={"country": "DE", "language": "en"},
            occurred_at=at(14),
        ),
    }
    converted = await purchase(
        client,
        account,
        clock,
        reference="chk_d",
        email="dave@example.com",
        occurred_at=at(14, 11),
        bare=False,
    )
    assert converted == [leads["dave_cart"]]
    return leads


def named(sample: dict[str, str], *names: str) -> list[str]:
    return [sample[n] for n in names]


async def test_unfiltered_list_is_newest_first(client, account, sample):
    assert await ids(client, account) == named(
        sample, "dave_cart", "alice_order", "carol_renewal", "bob_trial", "alice_cart"
    )


FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"source_type": "abandoned_checkout"}, ["dave_cart", "alice_cart"]),
    ({"source_type": "trial"}, ["bob_trial"]),
    ({"source_type": "unfinished_order"}, ["alice_order"]),
    ({"source_type": "opt_in"}, []),
    ({"status": "converted"}, ["dave_cart"]),
    (
        {"status": "open"},
        ["alice_order", "carol_renewal", "bob_trial", "alice_cart"],
    ),
    ({"status": "expired"}, []),
    ({"source_type": "abandoned_checkout", "status": "open"}, ["alice_cart"]),
    ({"email": "alice@example.com"}, ["alice_order", "alice_cart"]),
    ({"email": "ALICE@EXAMPLE.COM"}, ["alice_order", "alice_cart"]),
    ({"email": "alice@"}, []),
    ({"country": "DE"}, ["dave_cart", "alice_cart"]),
    ({"country": "de"}, ["dave_cart", "alice_cart"]),
    ({"country": "JP"}, []),
    ({"language": "de"}, ["alice_cart"]),
    ({"language": "de-at"}, ["alice_order"]),
    ({"language": "en_us"}, ["carol_renewal"]),
    ({"country": "DE", "language": "en"}, ["dave_cart"]),
    ({"captured_from": "2026-01-12T10:00:00Z"}, ["dave_cart", "alice_order", "carol_renewal"]),
    ({"captured_from": "2026-01-12T10:00:01Z"}, ["dave_cart", "alice_order"]),
    ({"captured_to": "2026-01-12T10:00:00Z"}, ["bob_trial", "alice_cart"]),
    ({"captured_to": "2026-01-12T10:00:01Z"}, ["carol_renewal", "bob_trial", "alice_cart"]),
    (
        {"captured_from": "2026-01-11T00:00:00Z", "captured_to": "2026-01-13T00:00:00Z"},
        ["carol_renewal", "bob_trial"],
    ),
    # Offsets are honoured: 11:00+01:00 is 10:00Z (inclusive); read as 11:00Z it would not be.
    (
        {"captured_from": "2026-01-12T11:00:00+01:00"},
        ["dave_cart", "alice_order", "carol_renewal"],
    ),
    # 09:30-05:00 is 14:30Z: carol (10:00Z) is in; ignoring the offset would leave her out.
    (
        {"captured_to": "2026-01-12T09:30:00-05:00"},
        ["carol_renewal", "bob_trial", "alice_cart"],
    ),
    ({"captured_from": "2026-01-14T00:00:00Z", "captured_to": "2026-01-10T00:00:00Z"}, []),
    ({"email": "alice@example.com", "source_type": "abandoned_checkout"}, ["alice_cart"]),
]


async def test_filters(client, account, sample):
    by_id = {lead_id: name for name, lead_id in sample.items()}
    failures = []
    for params, expected in FILTER_CASES:
        got = [by_id.get(i, i) for i in await ids(client, account, **params)]
        if got != expected:
            failures.append(f"{params}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)


INVALID_QUERIES = [
    pytest.param({"status": "pending"}, "status", id="status"),
    pytest.param({"status": "OPEN"}, "status", id="status-case"),
    pytest.param({"source_type": "newsletter"}, "source_type", id="source-type"),
    pytest.param({"country": "XX"}, "country", id="country-unassigned"),
    pytest.param({"country": "DEU"}, "country", id="country-alpha3"),
    pytest.param({"country": "EU"}, "country", id="country-reserved"),
    pytest.param({"country": ""}, "country", id="country-empty"),
    pytest.param({"language": "123"}, "language", id="language"),
    pytest.param({"language": "german"}, "language", id="language-name"),
    pytest.param({"limit": "501"}, "limit", id="limit-too-big"),
    pytest.param({"limit": "0"}, "limit", id="limit-zero"),
    pytest.param({"limit": "-1"}, "limit", id="limit-negative"),
    pytest.param({"limit": "ten"}, "limit", id="limit-text"),
    pytest.param({"limit": "9" * 30}, "limit", id="limit-huge"),
    pytest.param({"captured_from": "yesterday"}, "captured_from", id="from-text"),
    pytest.param({"captured_from": "2026-01-12T00:00:00"}, "captured_from", id="from-naive"),
    pytest.param({"captured_to": "2026-13-01T00:00:00Z"}, "captured_to", id="to-bad-month"),
    pytest.param(
        {"captured_from": "0001-01-01T00:00:00+01:00"}, "captured_from", id="from-out-of-range"
    ),
    pytest.param({"captured_to": "9999-12-31T23:59:59-01:00"}, "captured_to", id="to-out-of-range"),
    pytest.param({"email": "jane\x00@example.com"}, "email", id="email-nul"),
    pytest.param({"cursor": "!!!not-base64!!!"}, "cursor", id="cursor-garbage"),
    pytest.param({"cursor": "abc"}, "cursor", id="cursor-short"),
    pytest.param({"cursor": cursor_of({"a": 1})}, "cursor", id="cursor-object"),
    pytest.param({"cursor": cursor_of(["2026-01-12T10:00:00+00:00"])}, "cursor", id="cursor-1"),
    pytest.param({"cursor": cursor_of(["x", "y", "z"])}, "cursor", id="cursor-3"),
    pytest.param({"cursor": cursor_of(["yesterday", "lead_1"])}, "cursor", id="cursor-bad-time"),
    pytest.param(
        {"cursor": cursor_of(["2026-01-12T10:00:00", "lead_1"])}, "cursor", id="cursor-naive"
    ),
    pytest.param(
        {"cursor": cursor_of(["0001-01-01T00:00:00+01:00", "lead_1"])},
        "cursor",
        id="cursor-out-of-range",
    ),
    pytest.param(
        {"cursor": cursor_of(["2026-01-12T10:00:00+00:00", 5])}, "cursor", id="cursor-int-id"
    ),
    pytest.param(
        {"cursor": cursor_of(["2026-01-12T10:00:00+00:00", ["a"]])}, "cursor", id="cursor-list-id"
    ),
    pytest.param(
        {"cursor": cursor_of(["2026-01-12T10:00:00+00:00", "a\x00"])}, "cursor", id="cursor-nul"
    ),
    pytest.param(
        {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, "cursor", id="cursor-binary"
    ),
]


async def test_invalid_query_is_422_naming_the_parameter(client, account, clock):
    await capture(client, account, clock)
    failures = []
    for case in INVALID_QUERIES:
        params, field = case.values
        response = await client.get("/v1/leads", params=params, headers=auth(account))
        try:
            assert_problem(
                response, 422, field=field, code="validation_error", typed=True, titled=True
            )
        except AssertionError as exc:
            failures.append(f"{case.id}: {exc}")
    assert not failures, "\n".join(failures)


# -- pagination ---------------------------------------------------------------------------


async def walk(
    client: httpx.AsyncClient, account: dict[str, Any], limit: int, **params: Any
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        body = await list_leads(client, account, **query)
        pages.append([lead["id"] for lead in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not terminate"


async def test_cursor_pagination_returns_every_lead_once_newest_first(client, account, clock):
    # Captured out of order, so insertion order and id order differ from captured_at order.
    days = [12, 3, 9, 1, 14, 6, 10]
    created = {
        day: await capture(client, account, clock, reference=f"chk_{day}", occurred_at=at(day))
        for day in days
    }
    pages = await walk(client, account, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [lead_id for page in pages for lead_id in page]
    assert flat == [created[day] for day in sorted(days, reverse=True)]
    assert len(set(flat)) == 7


async def test_pagination_when_many_leads_share_captured_at(client, account, clock):
    moments = [at(10), at(11), at(11), at(11), at(11), at(12), at(12)]
    created = []
    for n, moment in enumerate(moments):
        created.append(
            (
                moment,
                await capture(client, account, clock, reference=f"chk_{n}", occurred_at=moment),
            )
        )
    expected = [lead_id for _, lead_id in sorted(created, reverse=True)]
    for limit in (1, 2, 3, 4):
        pages = await walk(client, account, limit)
        flat = [lead_id for page in pages for lead_id in page]
        assert flat == expected, f"limit={limit}"
        assert all(len(page) == limit for page in pages[:-1])


@pytest.mark.parametrize(("limit", "page_sizes"), [(7, [7]), (8, [7]), (500, [7]), (6, [6, 1])])
async def test_last_page_has_null_cursor(client, account, clock, limit, page_sizes):
    for n in range(7):
        await capture(client, account, clock, reference=f"chk_{n}", occurred_at=at(n + 1))
    pages = await walk(client, account, limit)
    assert [len(p) for p in pages] == page_sizes


async def test_default_page_size_is_fifty(client, account, clock):
    for n in range(51):
        await capture(
            client, account, clock, reference=f"chk_{n}", occurred_at=at(1) + dt.timedelta(hours=n)
        )
    body = await list_leads(client, account)
    assert len(body["items"]) == 50
    assert body["next_cursor"] is not None
    rest = await list_leads(client, account, cursor=body["next_cursor"])
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None


async def test_pagination_keeps_the_filters(client, account, clock):
    carts, trials = [], []
    for n in range(5):
        carts.append(
            await capture(client, account, clock, reference=f"chk_{n}", occurred_at=at(n + 1))
        )
        trials.append(
            await capture(
                client,
                account,
                clock,
                type="trial.started",
                reference=f"sub_{n}",
                occurred_at=at(n + 1, 11),
            )
        )
    pages = await walk(client, account, 2, source_type="trial")
    assert [lead_id for page in pages for lead_id in page] == list(reversed(trials))


async def test_empty_list(client, account):
    assert await list_leads(client, account) == {"items": [], "next_cursor": None}


async def test_converted_lead_is_found_by_purchase_email_case_insensitively(client, account, clock):
    lead_id = await capture(client, account, clock, email="Mixed.Case@Example.com")
    assert await ids(client, account, email="mixed.case@example.com") == [lead_id]
    result = await ingest(
        client,
        account,
        clock,
        type="order.completed",
        reference="ord_other",
        email="MIXED.CASE@example.com",
        occurred_at=iso(at(15, 11, 30)),
    )
    assert result["converted_lead_ids"] == [lead_id]
    assert await ids(client, account, status="converted", email="Mixed.Case@example.com") == [
        lead_id
    ]


# A date without a time is that day in the account's time zone (``from`` its start, ``to`` its
# end): what people type, and what a dashboard's date picker sends.
DAY_CASES = [
    pytest.param(
        "UTC",
        {"captured_from": "2026-01-12", "captured_to": "2026-01-12"},
        ["carol_renewal"],
        id="one-day-utc",
    ),
    pytest.param(
        "UTC", {"captured_from": "2026-01-13"}, ["dave_cart", "alice_order"], id="from-day"
    ),
    pytest.param("UTC", {"captured_to": "2026-01-11"}, ["bob_trial", "alice_cart"], id="to-day"),
    # UTC+14: 12 January there runs from 11 January 10:00Z to 12 January 10:00Z (exclusive).
    pytest.param(
        "Pacific/Kiritimati",
        {"captured_from": "2026-01-12", "captured_to": "2026-01-12"},
        ["bob_trial"],
        id="one-day-utc+14",
    ),
    # UTC-10: 12 January there runs from 12 January 10:00Z to 13 January 10:00Z (exclusive).
    pytest.param(
        "Pacific/Honolulu",
        {"captured_from": "2026-01-12", "captured_to": "2026-01-12"},
        ["carol_renewal"],
        id="one-day-utc-10",
    ),
]


@pytest.mark.parametrize(("timezone", "params", "expected"), DAY_CASES)
async def test_date_only_bounds_are_days_in_the_account_time_zone(
    client, account, sample, timezone, params, expected
):
    response = await client.put("/v1/settings", json={"timezone": timezone}, headers=auth(account))
    assert response.status_code == 200, response.text
    # The edges of the stored range stay answerable in every zone (no 500 from the clamp).
    edges = {"captured_from": "1970-01-01", "captured_to": "2199-12-31"}
    assert len(await ids(client, account, **edges)) == len(sample)
    by_id = {lead_id: name for name, lead_id in sample.items()}
    assert [by_id[i] for i in await ids(client, account, **params)] == expected


@pytest.mark.parametrize(
    "value", ["2026-1-12", "2026-02-30", "12.01.2026", "20260112", "1109-03-03", "2200-01-01"]
)
async def test_a_malformed_date_is_refused_naming_the_parameter(client, account, value):
    response = await client.get("/v1/leads", params={"captured_from": value}, headers=auth(account))
    body = assert_problem(response, 422, code="validation_error")
    assert [e["field"] for e in body["errors"]] == ["captured_from"]
