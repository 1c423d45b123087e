"""What accepted events do: idempotency, concurrency, lead upsert, conversion."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import select

from leadflow.models import Event
from tests.ingest.helpers import Counts, counts, parse_ts
from tests.support.api import auth, get_lead, ok_json
from tests.support.events import clock_iso, event_body, post_event


def _purchase(**overrides: Any) -> dict[str, Any]:
    return event_body(**{"type": "order.completed", "recovery_url": None, **overrides})


def _roles(lead: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["role"], e["type"]) for e in lead["events"]]


# --- Idempotency -------------------------------------------------------------------------


async def test_same_webhook_id_twice_is_a_duplicate(client, account, clock, db):
    first = ok_json(await post_event(client, account, event_body(), msg_id="m1", clock=clock))
    clock.advance(seconds=30)
    second = ok_json(await post_event(client, account, event_body(), msg_id="m1", clock=clock))
    assert first["duplicate"] is False
    assert second["duplicate"] is True
    assert second["event_id"] == first["event_id"]
    assert second["lead_id"] == first["lead_id"]
    assert second["lead_status"] == first["lead_status"] == "open"
    assert await counts(db) == Counts(events=1, leads=1, lead_events=1)


async def test_duplicate_with_another_body_changes_nothing(client, account, clock, db):
    first = ok_json(await post_event(client, account, event_body(), msg_id="m1", clock=clock))
    changed = event_body(amount="99.00", occurred_at=clock_iso(clock, minutes=-1))
    second = ok_json(await post_event(client, account, changed, msg_id="m1", clock=clock))
    assert second["duplicate"] is True
    assert second["event_id"] == first["event_id"]
    lead = await get_lead(client, account, first["lead_id"])
    assert lead["amount"] == "49.00"
    assert await counts(db) == Counts(events=1, leads=1, lead_events=1)


async def test_duplicate_purchase_replays_its_conversions(client, account, clock, db):
    cart = ok_json(await post_event(client, account, event_body(), clock=clock))
    purchase = _purchase(occurred_at=clock_iso(clock, minutes=-10))
    first = ok_json(await post_event(client, account, purchase, msg_id="p1", clock=clock))
    second = ok_json(await post_event(client, account, purchase, msg_id="p1", clock=clock))
    assert first["converted_lead_ids"] == [cart["lead_id"]]
    assert second == {**first, "duplicate": True}
    assert await counts(db) == Counts(events=2, leads=1, lead_events=2)


async def test_concurrent_identical_deliveries_store_one_event(client, account, clock, db):
    responses = await asyncio.gather(
        *(
            post_event(client, account, event_body(), msg_id="m-race", clock=clock)
            for _ in range(10)
        )
    )
    results = [ok_json(r) for r in responses]
    assert {r["event_id"] for r in results} == {results[0]["event_id"]}
    assert {r["lead_id"] for r in results} == {results[0]["lead_id"]}
    assert sorted(r["duplicate"] for r in results) == [False] + [True] * 9
    assert await counts(db) == Counts(events=1, leads=1, lead_events=1)


async def test_concurrent_events_for_one_lead_make_one_lead(client, account, clock, db):
    bodies = [
        event_body(amount=f"{40 + n}.00", occurred_at=clock_iso(clock, minutes=-n))
        for n in range(6)
    ]
    responses = await asyncio.gather(
        *(post_event(client, account, b, msg_id=f"m{n}", clock=clock) for n, b in enumerate(bodies))
    )
    results = [ok_json(r) for r in responses]
    assert len({r["event_id"] for r in results}) == 6
    assert len({r["lead_id"] for r in results}) == 1
    assert not any(r["duplicate"] for r in results)
    assert await counts(db) == Counts(events=6, leads=1, lead_events=6)
    lead = await get_lead(client, account, results[0]["lead_id"])
    assert sorted(role for role, _ in _roles(lead)) == ["capture"] + ["update"] * 5
    # Whatever the arrival order, the newest event's data wins and the oldest sets captured_at.
    assert lead["amount"] == "40.00"
    assert parse_ts(lead["captured_at"]) == clock.now() - dt.timedelta(minutes=5)


async def test_concurrent_two_webhook_ids_for_one_lead(client, account, clock, db):
    first, second = await asyncio.gather(
        post_event(client, account, event_body(), msg_id="a", clock=clock),
        post_event(client, account, event_body(), msg_id="b", clock=clock),
    )
    a, b = ok_json(first), ok_json(second)
    assert a["lead_id"] == b["lead_id"]
    assert a["event_id"] != b["event_id"]
    assert await counts(db) == Counts(events=2, leads=1, lead_events=2)


async def test_concurrent_cart_and_purchase_always_convert(client, account, clock, db):
    """The purchase and the cart it completes, arriving at once, always see each other."""
    refs = [f"chk_{n}" for n in range(8)]
    calls = []
    for ref in refs:
        cart = event_body(reference=ref, customer={"email": f"{ref}@example.com"})
        purchase = _purchase(
            reference=ref,
            customer={"email": f"{ref}@example.com"},
            occurred_at=clock_iso(clock, minutes=-5),
        )
        calls += [
            post_event(client, account, cart, clock=clock),
            post_event(client, account, purchase, clock=clock),
        ]
    for response in await asyncio.gather(*calls):
        ok_json(response)
    listed = await client.get("/v1/leads", params={"limit": 100}, headers=auth(account))
    leads = listed.json()["items"]
    assert sorted(lead["reference"] for lead in leads) == sorted(refs)
    assert {lead["status"] for lead in leads} == {"converted"}
    assert await counts(db) == Counts(events=16, leads=8, lead_events=16)


# --- Lead upsert -------------------------------------------------------------------------


async def test_newer_event_with_same_reference_updates_the_lead(client, account, clock, db):
    first = ok_json(await post_event(client, account, event_body(), clock=clock))
    newer = event_body(
        occurred_at=clock_iso(clock, minutes=-30),
        amount="59.00",
        products=[{"id": "sku-2", "name": "Team plan", "quantity": 1, "unit_price": "59.00"}],
        customer={"email": "jane@example.com", "first_name": "Janet"},
        attributes={"utm_campaign": "winter"},
    )
    second = ok_json(await post_event(client, account, newer, clock=clock))
    assert second["lead_id"] == first["lead_id"]
    assert second["event_id"] != first["event_id"]
    lead = await get_lead(client, account, first["lead_id"])
    assert lead["amount"] == "59.00"
    assert [p["id"] for p in lead["products"]] == ["sku-2"]
    assert lead["customer"]["first_name"] == "Janet"
    # Fields the newer event leaves out keep their values; attributes merge.
    assert lead["customer"]["last_name"] == "Doe"
    assert lead["customer"]["timezone"] == "Europe/Berlin"
    assert lead["recovery_url"] == "https://shop.example.com/recover/chk_1"
    assert lead["attributes"] == {"utm_source": "newsletter", "utm_campaign": "winter"}
    assert parse_ts(lead["captured_at"]) == parse_ts("2026-01-15T11:00:00Z")
    assert [role for role, _ in _roles(lead)] == ["capture", "update"]
    assert await counts(db) == Counts(events=2, leads=1, lead_events=2)


async def test_late_older_event_does_not_overwrite_but_moves_captured_at(
    client, account, clock, db
):
    first = ok_json(await post_event(client, account, event_body(), clock=clock))
    older = event_body(
        occurred_at="2026-01-15T08:00:00Z",
        amount="10.00",
        customer={"email": "jane@example.com", "first_name": "Old", "country": "FR"},
        attributes={"utm_source": "stale", "only_old": True},
    )
    second = ok_json(await post_event(client, account, older, clock=clock))
    assert second["lead_id"] == first["lead_id"]
    lead = await get_lead(client, account, first["lead_id"])
    assert lead["amount"] == "49.00"
    assert lead["customer"]["first_name"] == "Jane"
    assert lead["customer"]["country"] == "DE"
    assert lead["attributes"] == {"utm_source": "newsletter"}
    assert parse_ts(lead["captured_at"]) == parse_ts("2026-01-15T08:00:00Z")
    assert sorted(role for role, _ in _roles(lead)) == ["capture", "update"]
    # A later event newer than the first still applies: the late one did not reset the mark.
    newest = event_body(occurred_at="2026-01-15T11:30:00Z", amount="60.00")
    ok_json(await post_event(client, account, newest, clock=clock))
    assert (await get_lead(client, account, first["lead_id"]))["amount"] == "60.00"


async def test_same_reference_in_another_source_type_is_another_lead(client, account, clock, db):
    cart = ok_json(await post_event(client, account, event_body(reference="x1"), clock=clock))
    trial = event_body(type="trial.started", reference="x1")
    other = ok_json(await post_event(client, account, trial, clock=clock))
    assert cart["lead_id"] != other["lead_id"]
    lead = await get_lead(client, account, other["lead_id"])
    assert lead["source_type"] == "trial"
    assert await counts(db) == Counts(events=2, leads=2, lead_events=2)


async def test_opt_in_without_reference_is_keyed_by_email(client, account, clock, db):
    body = event_body(type="lead.opt_in", reference=None, amount=None, currency=None, products=[])
    first = ok_json(await post_event(client, account, body, clock=clock))
    again = {**body, "customer": {"email": "JANE@example.COM", "first_name": "J."}}
    second = ok_json(await post_event(client, account, again, clock=clock))
    assert second["lead_id"] == first["lead_id"]
    lead = await get_lead(client, account, first["lead_id"])
    assert lead["source_type"] == "opt_in"
    assert lead["reference"] == "jane@example.com"
    assert lead["customer"]["email"] == "jane@example.com"
    async with db.session() as s:
        refs = (await s.execute(select(Event.reference, Event.email))).all()
    assert set(refs) == {("jane@example.com", "jane@example.com")}
    assert await counts(db) == Counts(events=2, leads=1, lead_events=2)


async def test_future_occurred_at_is_capped_at_receipt(client, account, clock, db):
    body = event_body(occurred_at=clock_iso(clock, days=3))
    result = ok_json(await post_event(client, account, body, clock=clock))
    lead = await get_lead(client, account, result["lead_id"])
    assert parse_ts(lead["captured_at"]) == clock.now()
    assert parse_ts(lead["events"][0]["occurred_at"]) == clock.now()


async def test_event_offset_is_normalised_to_utc(client, account, clock, db):
    body = event_body(occurred_at="2026-01-15T12:30:00+02:00")
    result = ok_json(await post_event(client, account, body, clock=clock))
    lead = await get_lead(client, account, result["lead_id"])
    assert parse_ts(lead["captured_at"]) == parse_ts("2026-01-15T10:30:00Z")


# --- Conversion --------------------------------------------------------------------------


async def test_purchase_with_same_reference_converts(client, account, clock, db):
    cart = ok_json(await post_event(client, account, event_body(), clock=clock))
    purchase = _purchase(occurred_at="2026-01-15T11:45:00Z", customer={"email": "x@example.org"})
    result = ok_json(await post_event(client, account, purchase, clock=clock))
    assert result["type"] == "order.completed"
    assert result["lead_id"] is None
    assert result["converted_lead_ids"] == [cart["lead_id"]]
    lead = await get_lead(client, account, cart["lead_id"])
    assert lead["status"] == "converted"
    assert parse_ts(lead["converted_at"]) == parse_ts("2026-01-15T11:45:00Z")
    assert ("conversion", "order.completed") in _roles(lead)
    conversion = next(e for e in lead["events"] if e["role"] == "conversion")
    assert conversion["id"] == result["event_id"]
    # The purchase makes no lead of its own.
    assert await counts(db) == Counts(events=2, leads=1, lead_events=2)


async def test_purchase_by_same_email_within_window_converts(client, account, clock, db):
    cart = event_body(occurred_at=clock_iso(clock, days=-6))
    lead_id = (ok_json(await post_event(client, account, cart, clock=clock)))["lead_id"]
    purchase = _purchase(
        reference="ord_77", occurred_at=clock_iso(clock), customer={"email": "JANE@example.com"}
    )
    result = ok_json(await post_event(client, account, purchase, clock=clock))
    assert result["converted_lead_ids"] == [lead_id]
    lead = await get_lead(client, account, lead_id)
    assert lead["status"] == "converted"
    assert parse_ts(lead["converted_at"]) == clock.now()


async def test_attribution_window_edge(client, account, clock, db):
    edge = event_body(reference="edge", occurred_at=clock_iso(clock, days=-7))
    late = event_body(
        reference="late",
        occurred_at=clock_iso(clock, days=-7, seconds=-1),
        customer={"email": "JANE@EXAMPLE.COM"},
    )
    edge_id = (ok_json(await post_event(client, account, edge, clock=clock)))["lead_id"]
    late_id = (ok_json(await post_event(client, account, late, clock=clock)))["lead_id"]
    purchase = _purchase(reference="ord_1", occurred_at=clock_iso(clock))
    result = ok_json(await post_event(client, account, purchase, clock=clock))
    assert result["converted_lead_ids"] == [edge_id]
    assert (await get_lead(client, account, late_id))["status"] == "open"


async def test_purchase_by_email_after_window_does_not_convert(client, account, clock, db):
    cart = event_body(occurred_at=clock_iso(clock, days=-8))
    lead_id = (ok_json(await post_event(client, account, cart, clock=clock)))["lead_id"]
    purchase = _purchase(reference="ord_77", occurred_at=clock_iso(clock))
    result = ok_json(await post_event(client, account, purchase, clock=clock))
    assert result["converted_lead_ids"] == []
    lead = await get_lead(client, account, lead_id)
    assert lead["status"] == "open"
    assert lead["converted_at"] is None
    assert "conversion" not in {role for role, _ in _roles(lead)}


async def test_purchase_before_its_cart_event_converts_the_late_lead(client, account, clock, db):
    purchase = _purchase(occurred_at="2026-01-15T11:30:00Z")
    bought = ok_json(await post_event(client, account, purchase, clock=clock))
    assert bought["converted_lead_ids"] == []
    cart = ok_json(await post_event(client, account, event_body(), clock=clock))
    assert cart["lead_status"] == "converted"
    lead = await get_lead(client, account, cart["lead_id"])
    assert lead["status"] == "converted"
    assert parse_ts(lead["converted_at"]) == parse_ts("2026-01-15T11:30:00Z")
    assert sorted(_roles(lead)) == [
        ("capture", "checkout.abandoned"),
        ("conversion", "order.completed"),
    ]
    assert next(e for e in lead["events"] if e["role"] == "conversion")["id"] == bought["event_id"]


async def test_purchase_by_email_before_the_cart_event_arrives(client, account, clock, db):
    purchase = _purchase(reference="ord_9", occurred_at="2026-01-15T11:30:00Z")
    ok_json(await post_event(client, account, purchase, clock=clock))
    cart = ok_json(await post_event(client, account, event_body(reference="chk_9"), clock=clock))
    assert cart["lead_status"] == "converted"
    # A cart captured more than the window before that purchase stays open.
    old = event_body(reference="chk_old", occurred_at="2026-01-01T11:00:00Z")
    assert (ok_json(await post_event(client, account, old, clock=clock)))["lead_status"] == "open"


async def test_new_cart_after_the_purchase_stays_open(client, account, clock, db):
    first = ok_json(await post_event(client, account, event_body(), clock=clock))
    purchase = _purchase(occurred_at="2026-01-15T11:10:00Z")
    bought = ok_json(await post_event(client, account, purchase, clock=clock))
    assert bought["converted_lead_ids"] == [first["lead_id"]]
    clock.advance(hours=1)
    later = event_body(reference="chk_2", occurred_at="2026-01-15T12:30:00Z")
    second = ok_json(await post_event(client, account, later, clock=clock))
    assert second["lead_id"] != first["lead_id"]
    assert second["lead_status"] == "open"
    assert (await get_lead(client, account, second["lead_id"]))["status"] == "open"


async def test_purchase_converts_every_open_lead_of_the_contact_once(client, account, clock, db):
    cart = ok_json(await post_event(client, account, event_body(reference="c1"), clock=clock))
    trial = event_body(type="trial.started", reference="t1", occurred_at=clock_iso(clock, days=-2))
    trial_lead = ok_json(await post_event(client, account, trial, clock=clock))
    stranger = event_body(reference="c2", customer={"email": "bob@example.com"})
    other = ok_json(await post_event(client, account, stranger, clock=clock))
    purchase = _purchase(reference="ord_1", occurred_at=clock_iso(clock))
    result = ok_json(await post_event(client, account, purchase, clock=clock))
    assert sorted(result["converted_lead_ids"]) == sorted([cart["lead_id"], trial_lead["lead_id"]])
    assert (await get_lead(client, account, other["lead_id"]))["status"] == "open"
    again = _purchase(reference="ord_2", occurred_at=clock_iso(clock))
    assert (ok_json(await post_event(client, account, again, clock=clock)))[
        "converted_lead_ids"
    ] == []


async def test_purchase_in_another_account_converts_nothing(
    client, account, other_account, clock, db
):
    cart = ok_json(await post_event(client, account, event_body(), clock=clock))
    purchase = _purchase(occurred_at=clock_iso(clock))
    result = ok_json(await post_event(client, other_account, purchase, clock=clock))
    assert result["converted_lead_ids"] == []
    assert (await get_lead(client, account, cart["lead_id"]))["status"] == "open"
    hidden = await client.get(f"/v1/leads/{cart['lead_id']}", headers=auth(other_account))
    assert hidden.status_code == 404
    # ...and a purchase stored in B never converts a late cart in A.
    late = ok_json(await post_event(client, account, event_body(reference="chk_late"), clock=clock))
    assert late["lead_status"] == "open"
