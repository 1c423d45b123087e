"""POST /v1/webhooks/{account_id}/events/batch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from leadflow.kit.signing import new_webhook_secret
from leadflow.models import Event, Lead
from tests.ingest.helpers import Counts, assert_nothing_written, counts
from tests.support.api import (
    SMALL_BATCH_LIMIT,
    assert_problem,
    auth,
    error_fields,
    get_lead,
    ok_json,
)
from tests.support.events import clock_iso, event_body, post_batch, post_event, signed_headers


def item(item_id: Any = None, **overrides: Any) -> dict[str, Any]:
    body = event_body(**overrides)
    if item_id is not None:
        body["id"] = item_id
    return body


async def _stored(db) -> tuple[set[str], set[str]]:
    """(external ids of stored events, references of stored leads)."""
    async with db.session() as s:
        ids = set((await s.execute(select(Event.external_id))).scalars())
        refs = set((await s.execute(select(Lead.reference))).scalars())
    return ids, refs


async def test_mixed_batch_reports_each_item(client, account, clock, db):
    seen = ok_json(
        await post_event(client, account, item(reference="chk_seen"), msg_id="seen-1", clock=clock)
    )
    events = [
        item("b-0", reference="chk_a"),
        item(
            "b-1",
            reference="chk_bad",
            currency="XYZ",
            customer={"email": "not-an-email", "country": "QQ"},
        ),
        item("b-0", reference="chk_a", amount="1.00"),  # duplicate within the batch
        item("seen-1", reference="chk_seen"),  # already seen as a single webhook
        item(reference="chk_no_id"),  # no id
        item("b-5", reference="chk_b", type="trial.started"),
        item(42, reference="chk_int_id"),  # id not a string
        item("b-7", reference="chk_yen", amount="10.5", currency="JPY", products=[]),
        item("b-8", reference=None),
    ]
    result = ok_json(await post_batch(client, account, events, clock))
    assert (result["accepted"], result["duplicates"], result["invalid"]) == (2, 2, 5)
    results = result["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    assert [r["status"] for r in results] == [
        "accepted",
        "invalid",
        "duplicate",
        "duplicate",
        "invalid",
        "accepted",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert [r["id"] for r in results] == [
        "b-0",
        "b-1",
        "b-0",
        "seen-1",
        None,
        "b-5",
        None,
        "b-7",
        "b-8",
    ]

    accepted, bad, dup, old, no_id, trial, int_id, yen, no_ref = results
    assert accepted["result"]["duplicate"] is False
    assert accepted["errors"] is None
    assert dup["result"] == {**accepted["result"], "duplicate": True}
    assert old["result"] == {**seen, "duplicate": True}
    assert trial["result"]["type"] == "trial.started"
    assert error_fields(bad) == {"currency", "customer.email", "customer.country"}
    assert "id" in error_fields(no_id)
    assert "id" in error_fields(int_id)
    assert error_fields(yen) == {"amount"}
    assert error_fields(no_ref) == {"reference"}
    for invalid in (bad, no_id, int_id, yen, no_ref):
        assert invalid["result"] is None
        assert all(e["message"] for e in invalid["errors"])

    # Only the valid items were stored; the duplicate changed nothing.
    ids, refs = await _stored(db)
    assert ids == {"seen-1", "b-0", "b-5"}
    assert refs == {"chk_seen", "chk_a", "chk_b"}
    assert await counts(db) == Counts(events=3, leads=3, lead_events=3)
    lead = await get_lead(client, account, accepted["result"]["lead_id"])
    assert lead["amount"] == "49.00"


async def test_replayed_batch_is_all_duplicates(client, account, clock, db):
    events = [item("x-1", reference="r1"), item("x-2", reference="r2")]
    first = ok_json(await post_batch(client, account, events, clock, msg_id="batch-1"))
    clock.advance(minutes=10)
    second = ok_json(await post_batch(client, account, events, clock, msg_id="batch-2"))
    assert (first["accepted"], first["duplicates"]) == (2, 0)
    assert (second["accepted"], second["duplicates"], second["invalid"]) == (0, 2, 0)
    for a, b in zip(first["results"], second["results"], strict=True):
        assert b["result"] == {**a["result"], "duplicate": True}
    assert await counts(db) == Counts(events=2, leads=2, lead_events=2)


async def test_batch_item_id_and_webhook_id_share_one_key_space(client, account, clock, db):
    batch = ok_json(await post_batch(client, account, [item("k-1")], clock))
    single = ok_json(await post_event(client, account, item(), msg_id="k-1", clock=clock))
    assert single["duplicate"] is True
    assert single["event_id"] == batch["results"][0]["result"]["event_id"]
    assert (await counts(db)).events == 1


async def test_the_batch_webhook_id_is_not_an_item_key(client, account, clock, db):
    result = ok_json(await post_batch(client, account, [item("i-1")], clock, msg_id="i-2"))
    assert result["accepted"] == 1
    single = ok_json(
        await post_event(client, account, item(reference="other"), msg_id="i-2", clock=clock)
    )
    assert single["duplicate"] is False
    assert (await counts(db)).events == 2


@pytest.mark.parametrize("order", ["purchase-first", "cart-first"])
async def test_cart_and_purchase_in_one_batch_convert(client, account, clock, db, order):
    purchase = item("p", type="order.completed", occurred_at=clock_iso(clock, minutes=-5))
    cart = item("c", occurred_at=clock_iso(clock, hours=-2))
    events = [purchase, cart] if order == "purchase-first" else [cart, purchase]
    result = ok_json(await post_batch(client, account, events, clock))
    assert result["accepted"] == 2
    by_id = {r["id"]: r["result"] for r in result["results"]}
    lead = await get_lead(client, account, by_id["c"]["lead_id"])
    assert lead["status"] == "converted"
    assert {e["role"] for e in lead["events"]} == {"capture", "conversion"}


async def test_items_for_one_lead_keep_the_newest_data(client, account, clock, db):
    events = [
        item("z-new", amount="70.00", occurred_at=clock_iso(clock, minutes=-1)),
        item("a-old", amount="10.00", occurred_at=clock_iso(clock, hours=-3)),
        item("m-mid", amount="40.00", occurred_at=clock_iso(clock, hours=-1)),
    ]
    result = ok_json(await post_batch(client, account, events, clock))
    lead_ids = {r["result"]["lead_id"] for r in result["results"]}
    assert len(lead_ids) == 1
    lead = await get_lead(client, account, lead_ids.pop())
    assert lead["amount"] == "70.00"
    assert lead["captured_at"].startswith("2026-01-15T09:00:00")
    assert await counts(db) == Counts(events=3, leads=1, lead_events=3)


async def test_concurrent_identical_batches_store_each_item_once(client, account, clock, db):
    events = [
        item(f"c-{n}", reference=f"chk_{n}", customer={"email": f"u{n % 3}@example.com"})
        for n in range(6)
    ]
    responses = await asyncio.gather(
        *(post_batch(client, account, events, clock) for _ in range(4))
    )
    results = [ok_json(r) for r in responses]
    assert sum(r["accepted"] for r in results) == 6
    assert sum(r["duplicates"] for r in results) == 18
    for index in range(6):
        event_ids = {r["results"][index]["result"]["event_id"] for r in results}
        assert len(event_ids) == 1
    assert await counts(db) == Counts(events=6, leads=6, lead_events=6)


async def test_concurrent_batches_touching_contacts_in_any_order(client, account, clock, db):
    """Batches lock each contact while storing its events: concurrent batches naming the
    same contacts in different orders must all be stored, not fail on lock cycles."""
    contacts = [f"c{n}@example.com" for n in range(8)]
    batches = []
    for b in range(6):
        order = contacts[b % 2 :: 1] + contacts[: b % 2]
        order = order if b % 3 else list(reversed(order))
        batches.append(
            [
                item(f"{b}-{n}", reference=f"r{b}-{n}", customer={"email": email})
                for n, email in enumerate(order)
            ]
        )
    responses = await asyncio.gather(*(post_batch(client, account, e, clock) for e in batches))
    assert [ok_json(r)["accepted"] for r in responses] == [8] * 6
    assert await counts(db) == Counts(events=48, leads=48, lead_events=48)


# --- Refused batches -------------------------------------------------------------------


async def test_more_than_1000_events_is_422(client, account, clock, db):
    events = [item(f"n-{n}", reference=f"r{n}") for n in range(1001)]
    response = await post_batch(client, account, events, clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert error_fields(problem) == {"events"}
    await assert_nothing_written(db)


async def test_exactly_1000_events_is_accepted_as_a_batch(client, account, clock, db):
    response = await post_batch(client, account, [{} for _ in range(1000)], clock)
    result = ok_json(response)
    assert (result["accepted"], result["duplicates"], result["invalid"]) == (0, 0, 1000)
    assert result["results"][999]["index"] == 999
    await assert_nothing_written(db)


async def test_configured_batch_limit_is_enforced(small_client, account, clock, db):
    events = [item(f"s-{n}", reference=f"r{n}") for n in range(SMALL_BATCH_LIMIT + 1)]
    response = await post_batch(small_client, account, events, clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert error_fields(problem) == {"events"}
    assert str(SMALL_BATCH_LIMIT) in problem["errors"][0]["message"]
    await assert_nothing_written(db)
    response = await post_batch(small_client, account, events[:SMALL_BATCH_LIMIT], clock)
    assert ok_json(response)["accepted"] == SMALL_BATCH_LIMIT


@pytest.mark.parametrize(
    "body",
    [{"events": []}, {}, {"events": "many"}, {"events": None}, {"events": [1, "two"]}],
    ids=["empty", "missing", "string", "null", "non-objects"],
)
async def test_malformed_events_list_is_422_naming_events(client, account, clock, db, body):
    response = await post_event(client, account, body, clock=clock, path="events/batch")
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert all(f.startswith("events") for f in error_fields(problem)), problem
    await assert_nothing_written(db)


async def test_malformed_batch_json_is_422(client, account, clock, db):
    response = await post_event(client, account, b'{"events": [', clock=clock, path="events/batch")
    problem = assert_problem(response, 422, "malformed_json", with_errors=True, complete=True)
    assert problem["errors"][0]["field"] == "body"
    await assert_nothing_written(db)


async def test_unstorable_text_in_an_item_refuses_the_batch(client, account, clock, db):
    events = [item("ok"), item("nul", customer={"email": "a@example.com", "first_name": "a\u0000"})]
    response = await post_batch(client, account, events, clock)
    problem = assert_problem(response, 422, "validation_error", with_errors=True, complete=True)
    assert error_fields(problem) == {"events[1].customer.first_name"}
    await assert_nothing_written(db)


def _batch_raw() -> bytes:
    return json.dumps({"events": [item("s-1"), item("s-2", reference="r2")]}).encode()


async def _post_raw(client, account, raw: bytes, headers: dict[str, str]):
    return await client.post(
        f"/v1/webhooks/{account['id']}/events/batch", content=raw, headers=headers
    )


async def test_batch_with_bad_signature_is_401(client, account, clock, db):
    raw = _batch_raw()
    ts = int(clock.now().timestamp())
    response = await _post_raw(
        client, account, raw, signed_headers(new_webhook_secret(), raw, timestamp=ts)
    )
    assert_problem(response, 401, "invalid_signature", complete=True)
    tampered = signed_headers(account["webhook_secret"], raw, timestamp=ts)
    response = await _post_raw(client, account, raw.replace(b"s-2", b"s-3"), tampered)
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)


async def test_batch_signed_by_another_account_is_401(client, account, other_account, clock, db):
    raw = _batch_raw()
    headers = signed_headers(
        other_account["webhook_secret"], raw, timestamp=int(clock.now().timestamp())
    )
    response = await _post_raw(client, account, raw, headers)
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)
    listed = await client.get("/v1/leads", headers=auth(account))
    assert listed.json()["items"] == []


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_batch_without_a_signature_header_is_401(client, account, clock, db, header):
    raw = _batch_raw()
    headers = signed_headers(account["webhook_secret"], raw, timestamp=int(clock.now().timestamp()))
    del headers[header]
    assert_problem(
        await _post_raw(client, account, raw, headers), 401, "invalid_signature", complete=True
    )
    await assert_nothing_written(db)


async def test_stale_batch_is_401(client, account, clock, db):
    response = await post_batch(
        client, account, [item("t-1")], clock, timestamp=int(clock.now().timestamp()) - 301
    )
    assert_problem(response, 401, "timestamp_out_of_tolerance", complete=True)
    await assert_nothing_written(db)


async def test_batch_for_unknown_account_is_404(client, account, clock, db):
    raw = _batch_raw()
    headers = signed_headers(account["webhook_secret"], raw, timestamp=int(clock.now().timestamp()))
    response = await client.post(
        "/v1/webhooks/acc_missing/events/batch", content=raw, headers=headers
    )
    assert_problem(response, 404, "not_found", complete=True)
    await assert_nothing_written(db)
