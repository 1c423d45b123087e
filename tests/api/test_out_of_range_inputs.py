"""Timestamps, rates and thresholds far out of range are refused with 422, never a 500."""

from __future__ import annotations

import pytest

from tests.support.api import auth
from tests.support.events import event_body, post_event

FAR = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1900-01-01T00:00:00Z"]


async def _campaign(client, account) -> str:
    body = {
        "name": "Cart recovery",
        "variants": [
            {"name": "A", "steps": [{"delay": "PT2H", "template": "abandoned_checkout/1"}]}
        ],
    }
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _assert_422(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}, response.text


@pytest.mark.parametrize("when", FAR)
async def test_far_timestamps(client, account, clock, when):
    h = auth(account)
    cid = await _campaign(client, account)
    _assert_422(await client.get("/v1/stats", params={"from": when}, headers=h), "from")
    _assert_422(await client.get("/v1/stats", params={"to": when}, headers=h), "to")
    _assert_422(
        await client.get(f"/v1/campaigns/{cid}/stats", params={"from": when}, headers=h), "from"
    )
    _assert_422(
        await client.get("/v1/leads", params={"captured_from": when}, headers=h), "captured_from"
    )
    _assert_422(
        await client.patch(f"/v1/campaigns/{cid}", json={"starts_at": when}, headers=h),
        "starts_at",
    )
    _assert_422(
        await client.post(f"/v1/campaigns/{cid}/backfill", json={"captured_from": when}, headers=h),
        "captured_from",
    )
    _assert_422(
        await post_event(client, account, event_body(occurred_at=when), clock=clock), "occurred_at"
    )


async def test_huge_rates_and_thresholds(client, account):
    h = auth(account)
    cid = await _campaign(client, account)
    for rates in ("USD:1e999999", "USD:NaN", "USD:0", "USD:-1"):
        _assert_422(await client.get("/v1/stats", params={"rates": rates}, headers=h), "rates")
    for criterion, extra in (("conversions", {}), ("revenue", {"currency": "EUR"})):
        ab_test = {"criterion": criterion, "threshold": "1e30", **extra}
        response = await client.patch(f"/v1/campaigns/{cid}", json={"ab_test": ab_test}, headers=h)
        assert response.status_code == 422, response.text


async def test_a_century_of_hours_is_refused_quickly(client, account):
    params = {"from": "2000-01-01T00:00:00Z", "to": "2199-01-01T00:00:00Z", "granularity": "hour"}
    response = await client.get("/v1/stats", params=params, headers=auth(account))
    _assert_422(response, "granularity")
