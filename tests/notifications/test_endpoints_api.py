"""The endpoint API: CRUD, the secret shown once, validation, tenant isolation."""

from __future__ import annotations

from sqlalchemy import update

from leadflow.models.notifications import IlnDelivery
from tests.notifications.helpers import add_endpoint, count_deliveries
from tests.support.api import auth
from tests.support.campaigns import create_campaign, step
from tests.support.events import event_body, post_event

URL = "https://hooks.example.net/leadflow"  # never contacted: the guard is off in `client`


def _fields(problem: dict) -> list[str]:
    return [e["field"] for e in problem.get("errors", [])]


async def test_create_get_list_patch_delete(client, account, clock):
    created = await add_endpoint(
        client,
        account,
        url=URL,
        description="CRM",
        event_types=["lead.converted", "lead.captured", "lead.captured"],
    )
    assert created["secret"].startswith("whsec_")
    assert created["id"].startswith("ep_")
    assert created["url"] == URL
    assert created["description"] == "CRM"
    assert created["event_types"] == ["lead.captured", "lead.converted"]
    assert created["enabled"] is True
    assert created["disabled_reason"] is None
    assert created["campaign_id"] is None

    path = f"/v1/iln/endpoints/{created['id']}"
    r = await client.get(path, headers=auth(account))
    assert r.status_code == 200
    shown = r.json()
    assert "secret" not in shown
    assert created["secret"] not in r.text
    assert shown == {k: v for k, v in created.items() if k != "secret"}

    other = await add_endpoint(client, account, url=URL + "/2")
    assert other["secret"] != created["secret"]
    r = await client.get("/v1/iln/endpoints", headers=auth(account))
    assert r.status_code == 200
    items = r.json()["items"]
    assert {i["id"] for i in items} == {created["id"], other["id"]}
    assert all("secret" not in i for i in items)
    assert created["secret"] not in r.text and other["secret"] not in r.text

    clock.advance(minutes=1)
    r = await client.patch(
        path,
        json={"url": URL + "/v2", "event_types": ["followup.sent"], "description": None},
        headers=auth(account),
    )
    assert r.status_code == 200, r.text
    patched = r.json()
    assert "secret" not in patched
    assert patched["url"] == URL + "/v2"
    assert patched["event_types"] == ["followup.sent"]
    assert patched["description"] is None
    assert patched["updated_at"] > created["updated_at"]
    r = await client.get(path, headers=auth(account))
    assert r.json() == patched

    r = await client.delete(path, headers=auth(account))
    assert r.status_code == 204
    assert (await client.get(path, headers=auth(account))).status_code == 404
    assert (await client.delete(path, headers=auth(account))).status_code == 404
    r = await client.get("/v1/iln/endpoints", headers=auth(account))
    assert [i["id"] for i in r.json()["items"]] == [other["id"]]


async def test_list_paginates(client, account):
    ids = {(await add_endpoint(client, account, url=f"{URL}/{i}"))["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/iln/endpoints", params=params, headers=auth(account))
        assert r.status_code == 200, r.text
        seen += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and set(seen) == ids


async def test_unknown_event_type_is_422(client, account, db):
    r = await client.post(
        "/v1/iln/endpoints",
        json={"url": URL, "event_types": ["lead.captured", "lead.exploded"]},
        headers=auth(account),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(f.startswith("event_types") for f in _fields(r.json())), r.json()
    created = await add_endpoint(client, account, url=URL)
    r = await client.patch(
        f"/v1/iln/endpoints/{created['id']}",
        json={"event_types": ["nope"]},
        headers=auth(account),
    )
    assert r.status_code == 422
    assert any(f.startswith("event_types") for f in _fields(r.json()))


async def test_bad_bodies_are_422(client, account):
    for body, field in [
        ({}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": URL, "surprise": 1}, "surprise"),
        ({"url": URL, "description": "x" * 501}, "description"),
        ({"url": "https://user:pw@hooks.example.net/x"}, "url"),
    ]:
        r = await client.post("/v1/iln/endpoints", json=body, headers=auth(account))
        assert r.status_code == 422, (body, r.text)
        assert field in _fields(r.json()), (body, r.json())
    r = await client.get("/v1/iln/endpoints", headers=auth(account))
    assert r.json()["items"] == []


async def test_campaign_of_another_account_is_422(client, account, other_account):
    foreign = await create_campaign(
        client, other_account, name="Cart recovery", status="active", steps=[step()]
    )
    r = await client.post(
        "/v1/iln/endpoints",
        json={"url": URL, "campaign_id": foreign["id"]},
        headers=auth(account),
    )
    assert r.status_code == 422, r.text
    assert _fields(r.json()) == ["campaign_id"]
    r = await client.post(
        "/v1/iln/endpoints",
        json={"url": URL, "campaign_id": "cmp_doesnotexist"},
        headers=auth(account),
    )
    assert r.status_code == 422

    mine = await create_campaign(
        client, account, name="Cart recovery", status="active", steps=[step()]
    )
    created = await add_endpoint(client, account, url=URL, campaign_id=mine["id"])
    assert created["campaign_id"] == mine["id"]
    path = f"/v1/iln/endpoints/{created['id']}"
    r = await client.patch(path, json={"campaign_id": foreign["id"]}, headers=auth(account))
    assert r.status_code == 422
    assert _fields(r.json()) == ["campaign_id"]
    assert (await client.get(path, headers=auth(account))).json()["campaign_id"] == mine["id"]
    r = await client.patch(path, json={"campaign_id": None}, headers=auth(account))
    assert r.status_code == 200
    assert r.json()["campaign_id"] is None


async def test_nulls_refused_on_patch(client, account):
    created = await add_endpoint(client, account, url=URL)
    path = f"/v1/iln/endpoints/{created['id']}"
    for body, field in [({"url": None}, "url"), ({"enabled": None}, "enabled")]:
        r = await client.patch(path, json=body, headers=auth(account))
        assert r.status_code == 422, (body, r.text)
        assert _fields(r.json()) == [field]


async def test_requires_api_key(client):
    for method, path in [
        ("GET", "/v1/iln/endpoints"),
        ("POST", "/v1/iln/endpoints"),
        ("GET", "/v1/iln/deliveries"),
    ]:
        r = await client.request(method, path, json={"url": URL} if method == "POST" else None)
        assert r.status_code == 401


async def test_tenant_isolation(client, account, other_account, clock, db):
    theirs = await add_endpoint(client, other_account, url=URL)
    mine = await add_endpoint(client, account, url=URL)
    r = await post_event(
        client, other_account, event_body(occurred_at=clock.now().isoformat()), clock=clock
    )
    assert r.status_code == 200
    assert await count_deliveries(db) == 1  # only the other account's endpoint
    r = await client.get("/v1/iln/deliveries", headers=auth(other_account))
    their_delivery = r.json()["items"][0]
    # fail it so redeliver would otherwise be allowed
    async with db.session() as s:
        await s.execute(update(IlnDelivery).values(status="failed"))

    ep = f"/v1/iln/endpoints/{theirs['id']}"
    me = auth(account)
    for method, path, body in [
        ("GET", ep, None),
        ("PATCH", ep, {"description": "mine now"}),
        ("PATCH", ep, {"enabled": False}),
        ("DELETE", ep, None),
        ("POST", ep + "/rotate-secret", None),
        ("POST", ep + "/test", None),
        ("POST", f"/v1/iln/deliveries/{their_delivery['id']}/redeliver", None),
    ]:
        r = await client.request(method, path, json=body, headers=me)
        assert r.status_code == 404, (method, path, r.text)
    assert [
        i["id"] for i in (await client.get("/v1/iln/endpoints", headers=me)).json()["items"]
    ] == [mine["id"]]
    r = await client.get("/v1/iln/deliveries", params={"endpoint_id": theirs["id"]}, headers=me)
    assert r.status_code == 200
    assert r.json()["items"] == []
    assert (await client.get("/v1/iln/deliveries", headers=me)).json()["items"] == []

    # and nothing changed for the owner
    r = await client.get(ep, headers=auth(other_account))
    assert r.status_code == 200
    assert r.json() == {k: v for k, v in theirs.items() if k != "secret"}
    r = await client.get("/v1/iln/deliveries", headers=auth(other_account))
    [delivery] = r.json()["items"]
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 0  # no ping was delivered or recorded for it
