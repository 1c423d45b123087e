"""POST /v1/webhooks/{account_id}/events: authentication, limits, validation, tenancy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from leadflow.kit.signing import new_webhook_secret, sign, signature_matches
from tests.ingest.helpers import Counts, assert_nothing_written, counts
from tests.support.api import SMALL_BODY_LIMIT, assert_problem
from tests.support.events import event_body, post_event, signed_headers

# --- Standard Webhooks signatures -------------------------------------------------------

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_sign_matches_the_standard_webhooks_test_vector():
    assert sign(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_signature_matches_any_v1_entry_and_ignores_other_versions():
    good = SPEC_SIGNATURE
    wrong = sign(new_webhook_secret(), SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)
    args = ([SPEC_SECRET], SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert signature_matches(*args, good)
    assert signature_matches(*args, f"{wrong} {good}")
    assert signature_matches(*args, f"{good} {wrong}")
    assert not signature_matches(*args, wrong)
    # Only "v1," entries count: the same digest under another version tag is ignored.
    assert not signature_matches(*args, good.replace("v1,", "v1a,", 1))
    assert not signature_matches(*args, good.removeprefix("v1,"))
    assert not signature_matches(*args, "")
    # The id and timestamp are part of the signed content.
    assert not signature_matches([SPEC_SECRET], "msg_other", SPEC_TIMESTAMP, SPEC_BODY, good)
    assert not signature_matches([SPEC_SECRET], SPEC_MSG_ID, SPEC_TIMESTAMP + 1, SPEC_BODY, good)
    # Several secrets (rotation on our side): any one may match.
    assert signature_matches([new_webhook_secret(), SPEC_SECRET], *args[1:], good)


async def test_valid_signature_is_accepted(client, account, clock, db):
    response = await post_event(client, account, event_body(), clock=clock)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["duplicate"] is False
    assert result["event_id"].startswith("evt_")
    assert result["lead_id"].startswith("lead_")
    assert result["lead_status"] == "open"
    assert await counts(db) == Counts(events=1, leads=1, lead_events=1)


async def test_rotation_several_signatures_where_one_matches(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    ts = int(clock.now().timestamp())
    headers = signed_headers(account["webhook_secret"], raw, msg_id="msg_rot", timestamp=ts)
    stale = sign(new_webhook_secret(), "msg_rot", ts, raw)
    headers["webhook-signature"] = f"{stale} {headers['webhook-signature']} v2,bm90LXVzZWQ="
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    assert response.status_code == 200, response.text
    assert (await counts(db)).events == 1


def _headers(account: dict[str, Any], raw: bytes, clock, **kw: Any) -> dict[str, str]:
    ts = kw.pop("timestamp", int(clock.now().timestamp()))
    return signed_headers(account["webhook_secret"], raw, timestamp=ts, **kw)


async def test_wrong_secret_is_refused(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = signed_headers(new_webhook_secret(), raw, timestamp=int(clock.now().timestamp()))
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)


async def test_several_signatures_none_matching_is_refused(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock)
    ts = int(headers["webhook-timestamp"])
    headers["webhook-signature"] = " ".join(
        sign(new_webhook_secret(), headers["webhook-id"], ts, raw) for _ in range(3)
    )
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)


async def test_tampered_body_is_refused(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock)
    tampered = json.dumps(event_body(amount="1.00")).encode()
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=tampered, headers=headers
    )
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)


async def test_signature_is_bound_to_the_webhook_id(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock, msg_id="msg_signed")
    headers["webhook-id"] = "msg_swapped"
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
@pytest.mark.parametrize("how", ["absent", "empty"])
async def test_missing_header_is_refused(client, account, clock, db, header, how):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock)
    if how == "absent":
        del headers[header]
    else:
        headers[header] = ""
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    problem = assert_problem(response, 401, "invalid_signature", complete=True)
    assert header in problem["detail"]
    await assert_nothing_written(db)


@pytest.mark.parametrize("timestamp", ["soon", "1768478400.0", "1768478400s", "0x6968A0C0"])
async def test_non_integer_timestamp_is_refused(client, account, clock, db, timestamp):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock)
    headers["webhook-timestamp"] = timestamp
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    problem = assert_problem(response, 401, "invalid_signature", complete=True)
    assert "webhook-timestamp" in problem["detail"]
    await assert_nothing_written(db)


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
async def test_timestamp_outside_tolerance_is_refused(client, account, clock, db, offset):
    now = int(clock.now().timestamp())
    response = await post_event(client, account, event_body(), timestamp=now + offset)
    assert_problem(response, 401, "timestamp_out_of_tolerance", complete=True)
    await assert_nothing_written(db)


@pytest.mark.parametrize("offset", [-300, 300])
async def test_timestamp_at_the_tolerance_edge_is_accepted(client, account, clock, db, offset):
    now = int(clock.now().timestamp())
    response = await post_event(client, account, event_body(), timestamp=now + offset)
    assert response.status_code == 200, response.text
    assert (await counts(db)).events == 1


async def test_tolerance_follows_the_server_clock(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock)
    clock.advance(seconds=301)  # the same delivery, received five minutes later: a replay
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    assert_problem(response, 401, "timestamp_out_of_tolerance", complete=True)
    await assert_nothing_written(db)


# --- Tenancy ---------------------------------------------------------------------------


async def test_unknown_account_is_404(client, account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = _headers(account, raw, clock)
    response = await client.post(
        "/v1/webhooks/acc_does_not_exist/events", content=raw, headers=headers
    )
    assert_problem(response, 404, "not_found", complete=True)
    await assert_nothing_written(db)


async def test_other_accounts_secret_is_refused(client, account, other_account, clock, db):
    raw = json.dumps(event_body()).encode()
    headers = _headers(other_account, raw, clock)
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=raw, headers=headers
    )
    assert_problem(response, 401, "invalid_signature", complete=True)
    await assert_nothing_written(db)
    # The same delivery is fine at the account the secret belongs to.
    response = await client.post(
        f"/v1/webhooks/{other_account['id']}/events", content=raw, headers=headers
    )
    assert response.status_code == 200, response.text


async def test_webhook_ids_are_scoped_per_account(client, account, other_account, clock, db):
    first = await post_event(client, account, event_body(), msg_id="msg_same", clock=clock)
    second = await post_event(client, other_account, event_body(), msg_id="msg_same", clock=clock)
    assert first.status_code == second.status_code == 200
    assert first.json()["duplicate"] is False
    assert second.json()["duplicate"] is False
    assert first.json()["event_id"] != second.json()["event_id"]
    assert first.json()["lead_id"] != second.json()["lead_id"]
    assert await counts(db) == Counts(events=2, leads=2, lead_events=2)


# --- Body size -------------------------------------------------------------------------


def _body_of_size(size: int) -> bytes:
    """A valid event whose JSON encoding is exactly ``size`` bytes."""
    base = json.dumps(event_body(attributes={"pad": ""})).encode()
    raw = json.dumps(event_body(attributes={"pad": "x" * (size - len(base))})).encode()
    assert len(raw) == size
    return raw


async def _chunks(raw: bytes, size: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


async def test_body_at_the_limit_is_accepted(small_client, account, clock, db):
    response = await post_event(small_client, account, _body_of_size(SMALL_BODY_LIMIT), clock=clock)
    assert response.status_code == 200, response.text
    assert (await counts(db)).events == 1


async def test_body_over_the_limit_by_content_length_is_413(small_client, account, clock, db):
    raw = _body_of_size(SMALL_BODY_LIMIT + 1)
    response = await post_event(small_client, account, raw, clock=clock)
    assert response.request.headers["content-length"] == str(SMALL_BODY_LIMIT + 1)
    assert_problem(response, 413, "payload_too_large", complete=True)
    await assert_nothing_written(db)


async def test_oversized_body_is_refused_before_the_signature_matters(small_client, account, db):
    raw = _body_of_size(SMALL_BODY_LIMIT * 4)
    response = await small_client.post(
        f"/v1/webhooks/{account['id']}/events",
        content=raw,
        headers={"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )
    assert_problem(response, 413, "payload_too_large", complete=True)
    response = await small_client.post(f"/v1/webhooks/{account['id']}/events", content=raw)
    assert_problem(response, 413, "payload_too_large", complete=True)
    await assert_nothing_written(db)


async def test_streamed_body_under_the_limit_is_accepted(small_client, account, clock, db):
    raw = _body_of_size(SMALL_BODY_LIMIT)
    headers = _headers(account, raw, clock)
    response = await small_client.post(
        f"/v1/webhooks/{account['id']}/events", content=_chunks(raw), headers=headers
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text
    assert (await counts(db)).events == 1


async def test_streamed_body_over_the_limit_is_413(small_client, account, clock, db):
    raw = _body_of_size(SMALL_BODY_LIMIT + 1)
    signed = _headers(account, raw, clock)
    for headers in (signed, {}):
        response = await small_client.post(
            f"/v1/webhooks/{account['id']}/events", content=_chunks(raw), headers=headers
        )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "payload_too_large", complete=True)
    await assert_nothing_written(db)


async def test_batch_body_limit_applies_too(small_client, account, clock, db):
    raw = json.dumps({"events": [{**event_body(), "id": f"i{n}"} for n in range(6)]}).encode()
    assert len(raw) > SMALL_BODY_LIMIT
    response = await post_event(small_client, account, raw, clock=clock, path="events/batch")
    assert_problem(response, 413, "payload_too_large", complete=True)
    await assert_nothing_written(db)
