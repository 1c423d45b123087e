"""Follow-up variants: adding a test variant, editing, removing; activation needs one."""

from __future__ import annotations

from leadflow.models import Campaign, Enrollment, Variant
from tests.campaigns.helpers import enrollment_of
from tests.support.api import assert_problem, auth
from tests.support.campaigns import create_campaign, custom_step, get_campaign, step, variant
from tests.support.database import count
from tests.support.events import capture


async def test_add_test_follow_up_variant(client, account, db):
    created = await create_campaign(client, account)
    response = await client.post(
        f"/v1/campaigns/{created['id']}/variants",
        json=variant("B", [step("PT3H", "abandoned_checkout/2"), custom_step("P2D")], weight=2),
        headers=auth(account),
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["id"].startswith("var_")
    assert added["name"] == "B"
    assert added["weight"] == 2
    assert [(s["step"], s["delay"]) for s in added["steps"]] == [(1, "PT3H"), (2, "P2D")]
    assert added["steps"][1]["subject"] == "Still thinking it over, {{ first_name }}?"
    assert added["steps"][1]["template"] is None

    campaign = await get_campaign(client, account, created["id"])
    assert [v["name"] for v in campaign["variants"]] == ["A", "B"]
    assert campaign["variants"][1] == added
    assert await count(db, Variant, campaign_id=created["id"]) == 2


async def test_variant_names_are_unique_within_a_campaign(client, account, db):
    created = await create_campaign(client, account)
    response = await client.post(
        f"/v1/campaigns/{created['id']}/variants", json=variant("A"), headers=auth(account)
    )
    assert_problem(response, 409, field="name", typed=True)
    assert await count(db, Variant) == 1
    # The same variant name in another campaign is fine.
    other = await create_campaign(client, account, name="Cart recovery FR")
    assert other["variants"][0]["name"] == "A"


async def test_patch_variant_edits_steps_weight_and_name(client, account, db):
    created = await create_campaign(client, account)
    variant_id = created["variants"][0]["id"]
    path = f"/v1/campaigns/{created['id']}/variants/{variant_id}"
    response = await client.patch(
        path,
        json={
            "name": "Friendly",
            "weight": 5,
            "steps": [step("PT4H", "abandoned_checkout/1"), step("P1D", "abandoned_checkout/3")],
        },
        headers=auth(account),
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["id"] == variant_id
    assert edited["name"] == "Friendly"
    assert edited["weight"] == 5
    assert [(s["step"], s["delay"], s["template"]) for s in edited["steps"]] == [
        (1, "PT4H", "abandoned_checkout/1"),
        (2, "P1D", "abandoned_checkout/3"),
    ]
    assert (await get_campaign(client, account, created["id"]))["variants"] == [edited]
    async with db.session() as session:
        stored = await session.get(Variant, variant_id)
        assert stored is not None
        assert [s["delay_seconds"] for s in stored.steps] == [4 * 3600, 86400]


async def test_patch_variant_is_partial(client, account):
    created = await create_campaign(client, account)
    before = created["variants"][0]
    response = await client.patch(
        f"/v1/campaigns/{created['id']}/variants/{before['id']}",
        json={"weight": 9},
        headers=auth(account),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**before, "weight": 9}


async def test_patch_variant_to_a_taken_name_changes_nothing(client, account, db):
    created = await create_campaign(client, account, variants=[variant("A"), variant("B")])
    a, b = created["variants"]
    response = await client.patch(
        f"/v1/campaigns/{created['id']}/variants/{b['id']}",
        json={"name": "A", "weight": 7, "steps": [step("P3D", "abandoned_checkout/2")]},
        headers=auth(account),
    )
    assert_problem(response, 409, field="name", typed=True)
    after = await get_campaign(client, account, created["id"])
    assert after["variants"] == [a, b]
    async with db.session() as session:
        stored = await session.get(Variant, b["id"])
        assert stored is not None
        assert stored.weight == 1
        assert stored.steps[0]["delay_seconds"] == 7200


async def test_patch_variant_with_invalid_steps_changes_nothing(client, account, db):
    created = await create_campaign(client, account)
    before = created["variants"][0]
    path = f"/v1/campaigns/{created['id']}/variants/{before['id']}"
    too_soon = await client.patch(
        path, json={"weight": 4, "steps": [step("PT10M")]}, headers=auth(account)
    )
    assert_problem(too_soon, 422, field="steps[0].delay", typed=True)
    four = await client.patch(path, json={"steps": [step()] * 4}, headers=auth(account))
    assert_problem(four, 422, field="steps", message_contains="at most 3", typed=True)
    unknown = await client.patch(
        path, json={"steps": [step(template="abandoned_checkout/9")]}, headers=auth(account)
    )
    assert_problem(unknown, 422, field="steps[0].template", typed=True)
    empty = await client.patch(path, json={"steps": []}, headers=auth(account))
    assert_problem(empty, 422, field="steps", typed=True)
    assert (await get_campaign(client, account, created["id"]))["variants"] == [before]
    async with db.session() as session:
        stored = await session.get(Variant, before["id"])
        assert stored is not None and stored.weight == 1


async def test_add_invalid_variant_writes_nothing(client, account, db):
    created = await create_campaign(client, account)
    path = f"/v1/campaigns/{created['id']}/variants"
    cases = [
        (variant("B", [step()] * 4), "steps"),
        (variant("B", [step("PT30M")]), "steps[0].delay"),
        (variant("B", [step(), step("2 days")]), "steps[1].delay"),
        (variant("B", [step(), custom_step(html="{{ password }}")]), "steps[1].html"),
        (variant("B", weight=0), "weight"),
        ({**variant("B"), "colour": "red"}, "colour"),
        ({"steps": [step()]}, "name"),
    ]
    for body, field in cases:
        response = await client.post(path, json=body, headers=auth(account))
        assert_problem(response, 422, field=field, typed=True)
    assert await count(db, Variant) == 1


async def test_delete_variant_removes_it(client, account, db):
    created = await create_campaign(client, account, variants=[variant("A"), variant("B")])
    a, b = created["variants"]
    path = f"/v1/campaigns/{created['id']}/variants/{b['id']}"
    response = await client.delete(path, headers=auth(account))
    assert response.status_code == 204
    assert response.content == b""
    assert (await get_campaign(client, account, created["id"]))["variants"] == [a]
    # Never used by a lead: gone from the database.
    assert await count(db, Variant, id=b["id"]) == 0
    again = await client.delete(path, headers=auth(account))
    assert_problem(again, 404, typed=True)
    edit = await client.patch(path, json={"weight": 2}, headers=auth(account))
    assert_problem(edit, 404, typed=True)


async def test_deleting_a_used_variant_archives_it(client, account, clock, db):
    created = await create_campaign(
        client, account, status="active", variants=[variant("A"), variant("B")]
    )
    lead_id = await capture(client, account, clock, reference="chk_1")
    used = await enrollment_of(db, lead_id)
    assert used is not None
    path = f"/v1/campaigns/{created['id']}/variants/{used.variant_id}"
    assert (await client.delete(path, headers=auth(account))).status_code == 204
    remaining = (await get_campaign(client, account, created["id"]))["variants"]
    assert used.variant_id not in [v["id"] for v in remaining]
    assert len(remaining) == 1
    async with db.session() as session:
        archived = await session.get(Variant, used.variant_id)
        assert archived is not None
        assert archived.archived_at is not None
    # The enrollment (history) survives.
    assert await count(db, Enrollment, lead_id=lead_id) == 1


async def test_last_variant_of_active_campaign_cannot_be_deleted(client, account, db):
    created = await create_campaign(client, account, status="active")
    only = created["variants"][0]
    path = f"/v1/campaigns/{created['id']}/variants/{only['id']}"
    response = await client.delete(path, headers=auth(account))
    assert_problem(response, 409, code="last_variant", typed=True)
    assert (await get_campaign(client, account, created["id"]))["variants"] == [only]
    assert await count(db, Variant) == 1
    # Once inactive, the last variant can go.
    off = await client.patch(
        f"/v1/campaigns/{created['id']}", json={"status": "inactive"}, headers=auth(account)
    )
    assert off.status_code == 200
    assert (await client.delete(path, headers=auth(account))).status_code == 204
    assert (await get_campaign(client, account, created["id"]))["variants"] == []


async def test_activating_without_variants_is_422_naming_status(client, account, db):
    response = await client.post(
        "/v1/campaigns",
        json={"name": "Cart recovery DE", "status": "active"},
        headers=auth(account),
    )
    assert_problem(response, 422, field="status", typed=True)
    assert await count(db, Campaign) == 0

    created = await create_campaign(client, account, variants=[])
    assert created["variants"] == []
    path = f"/v1/campaigns/{created['id']}"
    response = await client.patch(path, json={"status": "active"}, headers=auth(account))
    assert_problem(response, 422, field="status", typed=True)
    assert (await get_campaign(client, account, created["id"]))["status"] == "inactive"
    # After adding a variant activation works.
    added = await client.post(f"{path}/variants", json=variant("A"), headers=auth(account))
    assert added.status_code == 201
    on = await client.patch(path, json={"status": "active"}, headers=auth(account))
    assert on.status_code == 200, on.text
    assert on.json()["status"] == "active"


async def test_unknown_variant_is_404(client, account):
    created = await create_campaign(client, account)
    other = await create_campaign(client, account, name="Cart recovery FR")
    foreign_variant = other["variants"][0]["id"]
    for vid in ("var_missing", foreign_variant):
        path = f"/v1/campaigns/{created['id']}/variants/{vid}"
        assert_problem(
            await client.patch(path, json={"weight": 2}, headers=auth(account)), 404, typed=True
        )
        assert_problem(await client.delete(path, headers=auth(account)), 404, typed=True)
    assert (await get_campaign(client, account, other["id"]))["variants"][0]["weight"] == 1


async def test_variants_keep_the_order_they_were_given_in(client, account):
    names = ["Control", "Zeta", "Alpha", "Mid", "Beta"]
    for attempt in range(3):
        created = await create_campaign(
            client,
            account,
            name=f"Cart recovery test {attempt}",
            variants=[variant(name) for name in names],
        )
        assert [v["name"] for v in created["variants"]] == names
        again = await get_campaign(client, account, created["id"])
        assert [v["name"] for v in again["variants"]] == names
