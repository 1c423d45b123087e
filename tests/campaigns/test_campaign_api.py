"""Campaign CRUD over HTTP: defaults, reading, listing, partial updates, archiving, names."""

from __future__ import annotations

import datetime as dt

import pytest

from leadflow.models import Campaign, Variant
from tests.support.api import assert_problem, auth
from tests.support.campaigns import campaign_body, create_campaign, get_campaign, step, variant
from tests.support.database import count
from tests.support.events import NOW, iso


async def test_create_applies_defaults(client, account, db):
    response = await client.post(
        "/v1/campaigns", json={"name": "Cart recovery DE"}, headers=auth(account)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("cmp_")
    assert body["name"] == "Cart recovery DE"
    assert body["status"] == "inactive"
    assert body["source"] == "all"
    assert body["products"] == []
    assert body["languages"] == []
    assert body["countries"] == []
    assert body["priority"] == 0
    assert body["description"] is None
    assert body["starts_at"] is None
    assert body["ends_at"] is None
    assert body["send_window"] is None
    assert body["variants"] == []
    assert body["archived_at"] is None
    assert body["warnings"] == []
    assert body["created_at"] == body["updated_at"] == iso(NOW)
    assert await count(db, Campaign, id=body["id"], status="inactive") == 1


async def test_create_echoes_delays_as_iso_durations_and_numbers_steps(client, account, db):
    steps = [
        step("pt2h", "abandoned_checkout/1"),
        step("PT90M", "abandoned_checkout/2"),
        step("P1W", "abandoned_checkout/3", discount_code="SAVE10"),
    ]
    body = await create_campaign(client, account, variants=[variant("A", steps, weight=3)])
    [created] = body["variants"]
    assert created["id"].startswith("var_")
    assert created["name"] == "A"
    assert created["weight"] == 3
    assert [s["step"] for s in created["steps"]] == [1, 2, 3]
    assert [s["delay"] for s in created["steps"]] == ["PT2H", "PT1H30M", "P7D"]
    assert [s["template"] for s in created["steps"]] == [
        "abandoned_checkout/1",
        "abandoned_checkout/2",
        "abandoned_checkout/3",
    ]
    assert created["steps"][2]["discount_code"] == "SAVE10"
    assert created["steps"][0]["subject"] is None
    async with db.session() as session:
        stored = await session.get(Variant, created["id"])
        assert stored is not None
        assert [s["delay_seconds"] for s in stored.steps] == [7200, 5400, 604800]


async def test_create_stores_filters_schedule_and_window(client, account):
    body = await create_campaign(
        client,
        account,
        description="Carts from Germany and Austria",
        products=["sku-1", "sku-2", "sku-1"],
        languages=["DE", "pt_br"],
        countries=["de", "AT"],
        starts_at="2026-02-01T00:00:00+01:00",
        ends_at="2026-03-01T00:00:00Z",
        priority=7,
        send_window={"start": "09:00", "end": "20:00"},
    )
    assert body["description"] == "Carts from Germany and Austria"
    assert body["products"] == ["sku-1", "sku-2"]
    assert body["languages"] == ["de", "pt-BR"]
    assert body["countries"] == ["DE", "AT"]
    assert body["starts_at"] == "2026-01-31T23:00:00Z"
    assert body["ends_at"] == "2026-03-01T00:00:00Z"
    assert body["priority"] == 7
    assert body["send_window"] == {"start": "09:00", "end": "20:00"}
    assert body["source"] == "abandoned_checkout"
    # What was stored reads back identically.
    assert await get_campaign(client, account, body["id"]) == body


async def test_get_unknown_campaign_is_404(client, account):
    response = await client.get("/v1/campaigns/cmp_missing", headers=auth(account))
    assert_problem(response, 404, code="not_found", typed=True)


async def test_campaign_routes_require_an_api_key(client, account):
    created = await create_campaign(client, account)
    for method, path in [
        ("GET", "/v1/campaigns"),
        ("POST", "/v1/campaigns"),
        ("GET", f"/v1/campaigns/{created['id']}"),
        ("PATCH", f"/v1/campaigns/{created['id']}"),
        ("DELETE", f"/v1/campaigns/{created['id']}"),
        ("GET", "/v1/templates"),
    ]:
        response = await client.request(method, path, json={} if method != "GET" else None)
        assert_problem(response, 401, typed=True)
        bad_key = await client.request(
            method, path, headers={"Authorization": "Bearer lf_not_a_key"}
        )
        assert_problem(bad_key, 401, typed=True)
    assert (await get_campaign(client, account, created["id"]))["archived_at"] is None


async def test_list_paginates_with_cursor_and_limit(client, account):
    created = [
        (await create_campaign(client, account, name=f"Cart recovery wave {i}"))["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/campaigns", params=params, headers=auth(account))
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))
    # Items carry their variants, like GET one.
    full = (await client.get("/v1/campaigns", headers=auth(account))).json()
    assert full["next_cursor"] is None
    assert {len(item["variants"]) for item in full["items"]} == {1}


async def test_list_limit_exactly_filling_a_page_has_no_next_cursor(client, account):
    for i in range(2):
        await create_campaign(client, account, name=f"Trial nurture {i}")
    page = (await client.get("/v1/campaigns?limit=2", headers=auth(account))).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"cursor": "not-a-cursor!"}, "cursor"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit")],
)
async def test_list_rejects_bad_paging(client, account, params, field):
    response = await client.get("/v1/campaigns", params=params, headers=auth(account))
    assert_problem(response, 422, field=field, typed=True)


async def test_list_hides_archived_unless_asked(client, account):
    kept = await create_campaign(client, account, name="Cart recovery DE")
    archived = await create_campaign(client, account, name="Cart recovery FR")
    response = await client.delete(f"/v1/campaigns/{archived['id']}", headers=auth(account))
    assert response.status_code == 200, response.text

    default = (await client.get("/v1/campaigns", headers=auth(account))).json()
    assert [c["id"] for c in default["items"]] == [kept["id"]]
    everything = (
        await client.get("/v1/campaigns?include_archived=true", headers=auth(account))
    ).json()
    assert {c["id"] for c in everything["items"]} == {kept["id"], archived["id"]}
    [archived_view] = [c for c in everything["items"] if c["id"] == archived["id"]]
    assert archived_view["archived_at"] is not None


LIST_FILTERS = [
    ({"status": "active"}, ["Cart recovery DE", "Trial 50% off"]),
    ({"status": "inactive"}, ["Renewals_EN"]),
    ({"source": "trial"}, ["Trial 50% off"]),
    ({"source": "all"}, []),
    ({"name": "cart"}, ["Cart recovery DE"]),
    ({"name": "50%"}, ["Trial 50% off"]),  # LIKE wildcards are matched as written
    ({"name": "_en"}, ["Renewals_EN"]),
    ({"name": "%"}, ["Trial 50% off"]),
    ({"status": "active", "source": "abandoned_checkout", "name": "DE"}, ["Cart recovery DE"]),
]


async def test_list_filters_by_status_source_and_name(client, account, other_account):
    await create_campaign(client, account, name="Cart recovery DE", status="active")
    await create_campaign(
        client,
        account,
        name="Trial 50% off",
        source="trial",
        steps=[{"delay": "P1D", "template": "trial/1"}],
        status="active",
    )
    await create_campaign(
        client,
        account,
        name="Renewals_EN",
        source="renewal",
        steps=[{"delay": "P1D", "template": "renewal/1"}],
    )
    await create_campaign(client, other_account, name="Cart recovery DE", status="active")
    failures = []
    for params, expected in LIST_FILTERS:
        page = (await client.get("/v1/campaigns", params=params, headers=auth(account))).json()
        got = [c["name"] for c in page["items"]]
        if got != expected:
            failures.append(f"{params}: {got} != {expected}")
    assert not failures, "\n".join(failures)
    response = await client.get("/v1/campaigns", params={"status": "paused"}, headers=auth(account))
    assert_problem(response, 422, field="status")


async def test_patch_is_partial(client, account, clock):
    created = await create_campaign(
        client, account, languages=["de"], countries=["DE"], products=["sku-1"], priority=3
    )
    clock.advance(minutes=5)
    response = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json={"description": "Only the description changes"},
        headers=auth(account),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["description"] == "Only the description changes"
    assert patched["updated_at"] == iso(NOW + dt.timedelta(minutes=5))
    unchanged = {"description", "updated_at"}
    assert {k: v for k, v in patched.items() if k not in unchanged} == {
        k: v for k, v in created.items() if k not in unchanged
    }
    assert await get_campaign(client, account, created["id"]) == patched


async def test_patch_changes_filters_and_schedule(client, account):
    created = await create_campaign(client, account)
    response = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json={
            "name": "Cart recovery Iberia",
            "languages": ["ES", "pt_br", "es"],
            "countries": ["es", "PT"],
            "products": ["sku-9"],
            "priority": -2,
            "starts_at": "2026-02-01T02:00:00+02:00",
            "send_window": {"start": "22:00", "end": "06:00"},
        },
        headers=auth(account),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Cart recovery Iberia"
    assert patched["languages"] == ["es", "pt-BR"]
    assert patched["countries"] == ["ES", "PT"]
    assert patched["products"] == ["sku-9"]
    assert patched["priority"] == -2
    assert patched["starts_at"] == "2026-02-01T00:00:00Z"  # answered in UTC, as GET does
    assert await get_campaign(client, account, created["id"]) == patched
    assert patched["send_window"] == {"start": "22:00", "end": "06:00"}

    # Emptying a filter means "all" again; null clears the schedule and the window.
    cleared = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json={"languages": [], "starts_at": None, "send_window": None},
        headers=auth(account),
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["languages"] == []
    assert cleared.json()["starts_at"] is None
    assert cleared.json()["send_window"] is None
    assert cleared.json()["countries"] == ["ES", "PT"]


async def test_patch_switches_status_on_and_off(client, account, db):
    created = await create_campaign(client, account)
    assert created["status"] == "inactive"
    path = f"/v1/campaigns/{created['id']}"
    on = await client.patch(path, json={"status": "active"}, headers=auth(account))
    assert on.status_code == 200, on.text
    assert on.json()["status"] == "active"
    assert await count(db, Campaign, id=created["id"], status="active") == 1
    off = await client.patch(path, json={"status": "inactive"}, headers=auth(account))
    assert off.status_code == 200, off.text
    assert off.json()["status"] == "inactive"
    assert await count(db, Campaign, id=created["id"], status="inactive") == 1


async def test_create_active_directly(client, account):
    created = await create_campaign(client, account, status="active")
    assert created["status"] == "active"


async def test_delete_archives_and_keeps_campaign_readable(client, account, clock, db):
    created = await create_campaign(client, account, status="active")
    clock.advance(hours=1)
    response = await client.delete(f"/v1/campaigns/{created['id']}", headers=auth(account))
    assert response.status_code == 200, response.text
    archived = response.json()
    assert archived["archived_at"] == iso(NOW + dt.timedelta(hours=1))
    assert archived["status"] == "inactive"
    # Still readable, with its variants (history).
    again = await get_campaign(client, account, created["id"])
    assert again["archived_at"] == archived["archived_at"]
    assert [v["id"] for v in again["variants"]] == [v["id"] for v in created["variants"]]
    assert await count(db, Campaign, id=created["id"]) == 1
    # Archiving twice is harmless and keeps the first timestamp.
    clock.advance(hours=1)
    twice = await client.delete(f"/v1/campaigns/{created['id']}", headers=auth(account))
    assert twice.status_code == 200
    assert twice.json()["archived_at"] == archived["archived_at"]


async def test_archived_campaign_cannot_be_changed(client, account):
    created = await create_campaign(client, account)
    path = f"/v1/campaigns/{created['id']}"
    await client.delete(path, headers=auth(account))
    for body in ({"status": "active"}, {"name": "Revived"}, {"priority": 5}):
        response = await client.patch(path, json=body, headers=auth(account))
        assert_problem(response, 409, code="archived", typed=True)
    added = await client.post(f"{path}/variants", json=variant("B"), headers=auth(account))
    assert_problem(added, 409, code="archived", typed=True)
    after = await get_campaign(client, account, created["id"])
    assert after["status"] == "inactive"
    assert after["name"] == created["name"]
    assert len(after["variants"]) == 1


async def test_archived_name_can_be_reused(client, account, db):
    first = await create_campaign(client, account, name="Cart recovery DE")
    taken = await client.post(
        "/v1/campaigns", json=campaign_body("Cart recovery DE"), headers=auth(account)
    )
    assert_problem(taken, 409, field="name", typed=True)
    await client.delete(f"/v1/campaigns/{first['id']}", headers=auth(account))
    second = await create_campaign(client, account, name="Cart recovery DE")
    assert second["id"] != first["id"]
    assert await count(db, Campaign, name="Cart recovery DE") == 2
    # Renaming another live campaign to the reused name is refused again.
    third = await create_campaign(client, account, name="Cart recovery AT")
    rename = await client.patch(
        f"/v1/campaigns/{third['id']}", json={"name": "cart recovery de"}, headers=auth(account)
    )
    assert_problem(rename, 409, field="name", typed=True)


@pytest.mark.parametrize(
    "duplicate",
    ["Cart recovery DE", "cart RECOVERY de", "  Cart recovery DE  ", "CART RECOVERY DE "],
)
async def test_name_is_unique_per_account_case_insensitively(client, account, db, duplicate):
    await create_campaign(client, account, name="Cart recovery DE")
    response = await client.post(
        "/v1/campaigns", json=campaign_body(duplicate), headers=auth(account)
    )
    body = assert_problem(response, 409, field="name", typed=True)
    assert body["code"] == "name_taken"
    assert await count(db, Campaign) == 1
    assert await count(db, Variant) == 1


async def test_rename_to_a_taken_name_is_409_and_keeps_the_old_name(client, account):
    await create_campaign(client, account, name="Cart recovery DE")
    other = await create_campaign(client, account, name="Trial nurture")
    response = await client.patch(
        f"/v1/campaigns/{other['id']}",
        json={"name": "CART recovery de", "priority": 9},
        headers=auth(account),
    )
    assert_problem(response, 409, field="name", typed=True)
    after = await get_campaign(client, account, other["id"])
    assert after["name"] == "Trial nurture"
    assert after["priority"] == 0
    # Changing only the case of one's own name is fine.
    own = await client.patch(
        f"/v1/campaigns/{other['id']}", json={"name": "TRIAL nurture"}, headers=auth(account)
    )
    assert own.status_code == 200, own.text
    assert own.json()["name"] == "TRIAL nurture"


async def test_same_name_in_another_account_is_fine(client, account, other_account, db):
    mine = await create_campaign(client, account, name="Cart recovery DE")
    theirs = await create_campaign(client, other_account, name="Cart recovery DE")
    assert mine["id"] != theirs["id"]
    assert await count(db, Campaign, name="Cart recovery DE") == 2


async def test_name_is_trimmed(client, account):
    created = await create_campaign(client, account, name="  Cart recovery DE  ")
    assert created["name"] == "Cart recovery DE"


@pytest.mark.parametrize("name", ["promo1", "test", "Promo 2", "TEST", "campaign-3", "x"])
async def test_vague_name_is_accepted_with_a_warning(client, account, name):
    response = await client.post("/v1/campaigns", json=campaign_body(name), headers=auth(account))
    assert response.status_code == 201, response.text
    warnings = response.json()["warnings"]
    assert warnings
    assert all(isinstance(w, str) and w for w in warnings)
    # The warning is advice about this campaign, shown on reads too.
    assert (await get_campaign(client, account, response.json()["id"]))["warnings"] == warnings


@pytest.mark.parametrize(
    "name", ["Abandoned carts DE - 10% off", "Trial nurture EN", "Promo for returning buyers"]
)
async def test_descriptive_name_has_no_warning(client, account, name):
    created = await create_campaign(client, account, name=name)
    assert created["warnings"] == []


async def test_renaming_to_a_descriptive_name_clears_the_warning(client, account):
    created = await create_campaign(client, account, name="promo1")
    assert created["warnings"]
    response = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json={"name": "Spring sale reminders"},
        headers=auth(account),
    )
    assert response.status_code == 200
    assert response.json()["warnings"] == []
