"""GET /v1/lead-groups and PATCH /v1/lead-groups/{key}."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow.leads.views import GROUP_DESCRIPTIONS
from tests.support.api import assert_problem, auth
from tests.support.events import at, capture, purchase

BUILTIN = [
    ("unfinished_order", "Unfinished orders"),
    ("trial", "Trial users"),
    ("abandoned_checkout", "Abandoned orders"),
    ("renewal", "Renewals"),
    ("opt_in", "Subscribers"),
]


async def list_groups(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    response = await client.get("/v1/lead-groups", headers=auth(account))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def counts(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, int]:
    return {g["key"]: g["open_leads"] for g in (await list_groups(client, account))["items"]}


async def statuses(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, str]:
    return {g["key"]: g["status"] for g in (await list_groups(client, account))["items"]}


async def test_new_account_has_the_four_builtin_groups(client, account):
    body = await list_groups(client, account)
    assert body == {
        "items": [
            {
                "key": key,
                "name": name,
                "description": GROUP_DESCRIPTIONS[key],
                "source_type": key,
                "status": "active",
                "open_leads": 0,
            }
            for key, name in BUILTIN
        ],
        "next_cursor": None,
    }


async def test_open_leads_count_captures_and_conversions(client, account, clock):
    await capture(client, account, clock, reference="chk_1", email="a@example.com")
    await capture(client, account, clock, reference="chk_2", email="b@example.com")
    await capture(
        client, account, clock, type="trial.started", reference="sub_1", email="c@example.com"
    )
    await capture(
        client, account, clock, type="renewal.due", reference="sub_2", email="d@example.com"
    )
    # An opt-in belongs to the built-in "Subscribers" group.
    await capture(client, account, clock, type="lead.opt_in", reference=None, email="e@example.com")
    assert await counts(client, account) == {
        "unfinished_order": 0,
        "trial": 1,
        "abandoned_checkout": 2,
        "renewal": 1,
        "opt_in": 1,
    }

    # A second event about the same checkout updates the lead; it is not a new one.
    await capture(
        client, account, clock, reference="chk_1", email="a@example.com", occurred_at=at(15, 11, 30)
    )
    await capture(
        client,
        account,
        clock,
        type="order.unfinished",
        reference="ord_1",
        email="f@example.com",
    )
    assert await counts(client, account) == {
        "unfinished_order": 1,
        "trial": 1,
        "abandoned_checkout": 2,
        "renewal": 1,
        "opt_in": 1,
    }

    # A purchase converts the checkout with the same reference: it leaves the open count.
    converted = await purchase(
        client,
        account,
        clock,
        reference="chk_2",
        email="b@example.com",
        occurred_at=at(15, 11, 45),
        bare=False,
    )
    assert len(converted) == 1
    lead = (await client.get(f"/v1/leads/{converted[0]}", headers=auth(account))).json()
    assert lead["status"] == "converted"
    assert lead["reference"] == "chk_2"
    assert await counts(client, account) == {
        "unfinished_order": 1,
        "trial": 1,
        "abandoned_checkout": 1,
        "renewal": 1,
        "opt_in": 1,
    }


async def test_patch_switches_a_group_off_and_on(client, account, clock):
    await capture(
        client, account, clock, type="trial.started", reference="sub_1", email="c@example.com"
    )
    response = await client.patch(
        "/v1/lead-groups/trial", json={"status": "inactive"}, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "key": "trial",
        "name": "Trial users",
        "description": "People using a free trial who have not bought yet.",
        "source_type": "trial",
        "status": "inactive",
        "open_leads": 1,
    }
    assert await statuses(client, account) == {
        "unfinished_order": "active",
        "trial": "inactive",
        "abandoned_checkout": "active",
        "renewal": "active",
        "opt_in": "active",
    }
    # Switching off is idempotent.
    again = await client.patch(
        "/v1/lead-groups/trial", json={"status": "inactive"}, headers=auth(account)
    )
    assert again.status_code == 200
    assert again.json()["status"] == "inactive"

    # An inactive group still captures and counts leads.
    await capture(
        client, account, clock, type="trial.started", reference="sub_2", email="g@example.com"
    )
    groups = {g["key"]: g for g in (await list_groups(client, account))["items"]}
    assert groups["trial"]["open_leads"] == 2
    assert groups["trial"]["status"] == "inactive"

    response = await client.patch(
        "/v1/lead-groups/trial", json={"status": "active"}, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert set((await statuses(client, account)).values()) == {"active"}


async def test_order_of_groups_is_stable_after_a_patch(client, account):
    await client.patch(
        "/v1/lead-groups/renewal", json={"status": "inactive"}, headers=auth(account)
    )
    keys = [g["key"] for g in (await list_groups(client, account))["items"]]
    assert keys == [key for key, _ in BUILTIN]


@pytest.mark.parametrize("key", ["newsletter", "OPT_IN", "TRIAL", "trial%20", "%00", "x" * 300])
async def test_patch_unknown_group_is_404(client, account, key):
    response = await client.patch(
        f"/v1/lead-groups/{key}", json={"status": "inactive"}, headers=auth(account)
    )
    assert_problem(response, 404, code="not_found", typed=True, titled=True)
    assert set((await statuses(client, account)).values()) == {"active"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "paused"}, "status"),
        ({"status": "ACTIVE"}, "status"),
        ({"status": None}, "status"),
        ({"status": True}, "status"),
        ({}, "status"),
        ({"status": "inactive", "name": "Renamed"}, "name"),
        ({"active": False}, "active"),
    ],
)
async def test_patch_with_bad_body_is_422(client, account, body, field):
    response = await client.patch("/v1/lead-groups/trial", json=body, headers=auth(account))
    assert_problem(response, 422, field=field, code="validation_error", typed=True, titled=True)
    groups = (await list_groups(client, account))["items"]
    assert [g["status"] for g in groups] == ["active"] * len(BUILTIN)
    assert [g["name"] for g in groups] == [name for _, name in BUILTIN]


async def test_patch_without_json_body_is_422(client, account):
    response = await client.patch("/v1/lead-groups/trial", headers=auth(account))
    assert_problem(response, 422, typed=True, titled=True)
    response = await client.patch(
        "/v1/lead-groups/trial",
        content=b"status=inactive",
        headers={**auth(account), "content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 422, typed=True, titled=True)
    assert (await statuses(client, account))["trial"] == "active"
