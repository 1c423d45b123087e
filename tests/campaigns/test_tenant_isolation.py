"""One account never sees or changes another's campaigns or variants."""

from __future__ import annotations

from typing import Any

from leadflow.models import Campaign, Enrollment, Variant
from tests.support.api import assert_problem, auth
from tests.support.campaigns import create_campaign, get_campaign, step, variant
from tests.support.database import count
from tests.support.events import capture


def routes(campaign_id: str, variant_id: str) -> list[tuple[str, str, Any]]:
    base = f"/v1/campaigns/{campaign_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"name": "Hijacked", "status": "inactive"}),
        ("DELETE", base, None),
        ("POST", f"{base}/variants", variant("Injected")),
        ("PATCH", f"{base}/variants/{variant_id}", {"weight": 999, "steps": [step("P7D")]}),
        ("DELETE", f"{base}/variants/{variant_id}", None),
        ("POST", f"{base}/backfill", {}),
        ("POST", f"{base}/preview", {}),
        ("POST", f"{base}/preview", {"variant_id": variant_id, "step": 1}),
    ]


async def test_every_campaign_route_is_404_for_another_account(
    client, account, other_account, clock, db
):
    theirs = await create_campaign(
        client, account, status="active", variants=[variant("A"), variant("B")]
    )
    await capture(client, account, clock, reference="chk_1")
    before = await get_campaign(client, account, theirs["id"])
    missing = assert_problem(
        await client.get("/v1/campaigns/cmp_missing", headers=auth(other_account)), 404, typed=True
    )
    for method, path, body in routes(theirs["id"], theirs["variants"][1]["id"]):
        response = await client.request(method, path, json=body, headers=auth(other_account))
        problem = assert_problem(response, 404, typed=True)
        assert theirs["id"] not in response.text, (method, path)
        assert problem["code"] == missing["code"]
    # Nothing changed for the owner.
    assert await get_campaign(client, account, theirs["id"]) == before
    assert await count(db, Campaign) == 1
    assert await count(db, Variant) == 2
    assert await count(db, Enrollment) == 1


async def test_own_campaign_with_another_accounts_variant_is_404(
    client, account, other_account, db
):
    mine = await create_campaign(client, account)
    theirs = await create_campaign(client, other_account, name="Their carts")
    foreign = theirs["variants"][0]["id"]
    for method, path, body in routes(mine["id"], foreign)[4:6]:
        response = await client.request(method, path, json=body, headers=auth(account))
        assert_problem(response, 404, typed=True)
    preview = await client.post(
        f"/v1/campaigns/{mine['id']}/preview", json={"variant_id": foreign}, headers=auth(account)
    )
    assert_problem(preview, 404, typed=True)
    assert await get_campaign(client, other_account, theirs["id"]) == theirs
    assert await count(db, Variant, id=foreign) == 1


async def test_list_never_shows_other_accounts_campaigns(client, account, other_account):
    mine = await create_campaign(client, account, name="My carts")
    archived = await create_campaign(client, account, name="My old carts")
    await client.delete(f"/v1/campaigns/{archived['id']}", headers=auth(account))
    theirs = await create_campaign(client, other_account, name="Their carts")
    for params in ({}, {"include_archived": "true"}, {"limit": 1}):
        listed = (
            await client.get("/v1/campaigns", params=params, headers=auth(other_account))
        ).json()
        assert [c["id"] for c in listed["items"]] == [theirs["id"]]
        assert listed["next_cursor"] is None
    everything = (
        await client.get("/v1/campaigns?include_archived=true", headers=auth(account))
    ).json()
    assert {c["id"] for c in everything["items"]} == {mine["id"], archived["id"]}


async def test_a_cursor_from_another_account_does_not_leak(client, account, other_account):
    for i in range(3):
        await create_campaign(client, account, name=f"My carts {i}")
    theirs = await create_campaign(client, other_account, name="Their carts")
    page = (await client.get("/v1/campaigns?limit=1", headers=auth(account))).json()
    assert page["next_cursor"]
    response = await client.get(
        "/v1/campaigns", params={"cursor": page["next_cursor"]}, headers=auth(other_account)
    )
    assert response.status_code == 200
    assert {c["id"] for c in response.json()["items"]} <= {theirs["id"]}
