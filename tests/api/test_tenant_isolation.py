"""One account never sees or changes another's data, on any merchant route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import assert_problem, auth
from tests.support.events import at, capture, event_body, post_event, purchase


async def json_of(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def a_leads(client, account, clock) -> list[str]:
    """Account A's leads: two carts, a trial and a renewal, one of the carts converted."""
    leads = [
        await capture(client, account, clock, reference="chk_1", email="jane@example.com"),
        await capture(
            client, account, clock, reference="chk_2", email="max@example.com", occurred_at=at(14)
        ),
        await capture(
            client,
            account,
            clock,
            type="trial.started",
            reference="sub_1",
            occurred_at=at(13),
            email="jane@example.com",
        ),
        await capture(
            client,
            account,
            clock,
            type="renewal.due",
            reference="sub_2",
            occurred_at=at(12),
            email="jane@example.com",
        ),
    ]
    converted = await purchase(
        client,
        account,
        clock,
        reference="chk_2",
        email="max@example.com",
        occurred_at=at(14, 12),
        bare=False,
    )
    assert converted == [leads[1]]
    return leads


async def test_other_account_gets_404_for_a_lead_it_does_not_own(
    client, account, other_account, a_leads
):
    missing = await client.get(
        "/v1/leads/lead_00000000000000000000000000", headers=auth(other_account)
    )
    missing_problem = assert_problem(missing, 404, typed=True, titled=True)
    for lead_id in a_leads:
        response = await client.get(f"/v1/leads/{lead_id}", headers=auth(other_account))
        # Indistinguishable from a lead that does not exist at all.
        assert assert_problem(response, 404, typed=True, titled=True) == missing_problem
        assert lead_id not in response.text
        # The owner still sees it.
        assert (await client.get(f"/v1/leads/{lead_id}", headers=auth(account))).status_code == 200


async def test_other_accounts_list_never_contains_its_leads(
    client, account, other_account, clock, a_leads
):
    b_lead = await capture(
        client, other_account, clock, reference="chk_1", email="jane@example.com"
    )
    queries: list[dict[str, Any]] = [
        {},
        {"email": "jane@example.com"},
        {"status": "converted"},
        {"status": "open"},
        {"source_type": "trial"},
        {"country": "DE"},
        {"language": "de"},
        {"captured_from": "2026-01-01T00:00:00Z"},
        {"limit": 500},
    ]
    for params in queries:
        body = await json_of(
            await client.get("/v1/leads", params=params, headers=auth(other_account))
        )
        ids = [lead["id"] for lead in body["items"]]
        assert not set(ids) & set(a_leads), params
        assert set(ids) <= {b_lead}, params
    # A's own list is untouched by B's lead with the same reference.
    a_ids = [
        i["id"]
        for i in (await json_of(await client.get("/v1/leads", headers=auth(account))))["items"]
    ]
    assert sorted(a_ids) == sorted(a_leads)
    assert b_lead not in a_ids


async def test_a_cursor_from_one_account_does_not_page_into_another(
    client, account, other_account, a_leads
):
    page = await json_of(await client.get("/v1/leads", params={"limit": 1}, headers=auth(account)))
    assert page["next_cursor"] is not None
    body = await json_of(
        await client.get(
            "/v1/leads", params={"cursor": page["next_cursor"]}, headers=auth(other_account)
        )
    )
    assert body == {"items": [], "next_cursor": None}


async def test_lead_group_counts_are_per_account(client, account, other_account, clock, a_leads):
    a_counts = {
        g["key"]: g["open_leads"]
        for g in (await json_of(await client.get("/v1/lead-groups", headers=auth(account))))[
            "items"
        ]
    }
    assert a_counts == {
        "unfinished_order": 0,
        "trial": 1,
        "abandoned_checkout": 1,
        "renewal": 1,
        "opt_in": 0,
    }
    b_groups = (await json_of(await client.get("/v1/lead-groups", headers=auth(other_account))))[
        "items"
    ]
    assert {g["key"]: g["open_leads"] for g in b_groups} == dict.fromkeys(a_counts, 0)

    await capture(client, other_account, clock, type="order.unfinished", reference="ord_9")
    b_groups = (await json_of(await client.get("/v1/lead-groups", headers=auth(other_account))))[
        "items"
    ]
    assert {g["key"]: g["open_leads"] for g in b_groups}["unfinished_order"] == 1
    a_after = (await json_of(await client.get("/v1/lead-groups", headers=auth(account))))["items"]
    assert {g["key"]: g["open_leads"] for g in a_after} == a_counts


async def test_a_purchase_in_one_account_never_converts_anothers_lead(
    client, account, other_account, clock, a_leads
):
    # Same reference and same email as A's open cart, but sent to B.
    converted = await purchase(
        client,
        other_account,
        clock,
        reference="chk_1",
        email="jane@example.com",
        occurred_at=at(15, 11, 30),
        bare=False,
    )
    assert converted == []
    lead = await json_of(await client.get(f"/v1/leads/{a_leads[0]}", headers=auth(account)))
    assert lead["status"] == "open"
    assert [e["role"] for e in lead["events"]] == ["capture"]


async def test_an_event_signed_with_one_accounts_secret_is_refused_for_another(
    client, account, other_account, clock
):
    # A's secret on B's webhook URL.
    impostor = {**other_account, "webhook_secret": account["webhook_secret"]}
    response = await post_event(client, impostor, event_body(), clock=clock)
    assert_problem(response, 401, typed=True, titled=True)
    body = await json_of(await client.get("/v1/leads", headers=auth(other_account)))
    assert body["items"] == []


async def test_settings_update_only_changes_the_callers_account(client, account, other_account):
    a_before = await json_of(await client.get("/v1/settings", headers=auth(account)))
    response = await client.put(
        "/v1/settings",
        json={
            "account_id": account["id"],  # read-only: must not redirect the write
            "lead_management_enabled": False,
            "default_currency": "JPY",
            "timezone": "Asia/Tokyo",
            "sender_name": "Other",
            "min_delays": {"trial": "PT0S"},
        },
        headers=auth(other_account),
    )
    assert response.status_code == 200, response.text
    assert response.json()["account_id"] == other_account["id"]
    assert response.json()["default_currency"] == "JPY"
    assert await json_of(await client.get("/v1/settings", headers=auth(account))) == a_before


async def test_lead_group_patch_only_changes_the_callers_account(client, account, other_account):
    response = await client.patch(
        "/v1/lead-groups/abandoned_checkout",
        json={"status": "inactive"},
        headers=auth(other_account),
    )
    assert response.status_code == 200, response.text
    a_groups = (await json_of(await client.get("/v1/lead-groups", headers=auth(account))))["items"]
    assert {g["status"] for g in a_groups} == {"active"}
    b_groups = (await json_of(await client.get("/v1/lead-groups", headers=auth(other_account))))[
        "items"
    ]
    assert {g["key"]: g["status"] for g in b_groups}["abandoned_checkout"] == "inactive"
