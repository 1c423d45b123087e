"""Merchant API authentication (Bearer API keys) and the admin account endpoint."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from sqlalchemy import text

from leadflow.app import create_app
from leadflow.config import Settings
from tests.support.api import ADMIN_TOKEN, app_client, assert_problem, auth, make_account

MERCHANT_ROUTES = [
    ("GET", "/v1/settings", None),
    ("PUT", "/v1/settings", {"sender_name": "Intruder"}),
    ("GET", "/v1/leads", None),
    ("GET", "/v1/leads/lead_00000000000000000000000000", None),
    ("GET", "/v1/lead-groups", None),
    ("PATCH", "/v1/lead-groups/trial", {"status": "inactive"}),
]


def assert_unauthorized(response: Any) -> dict[str, Any]:
    problem = assert_problem(response, 401, code="unauthorized", typed=True, titled=True)
    assert response.headers["www-authenticate"] == "Bearer"
    return problem


# -- merchant API keys --------------------------------------------------------------------


def bad_credentials(account: dict[str, Any]) -> dict[str, dict[str, str]]:
    key = account["api_key"]
    return {
        "missing": {},
        "empty": {"Authorization": ""},
        "bearer-without-key": {"Authorization": "Bearer"},
        "bearer-blank-key": {"Authorization": "Bearer    "},
        "wrong-key": {"Authorization": "Bearer lf_" + "x" * 43},
        "truncated-key": {"Authorization": f"Bearer {key[:-1]}"},
        "key-with-suffix": {"Authorization": f"Bearer {key}x"},
        "basic-scheme": {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
        "token-scheme": {"Authorization": f"Token {key}"},
        "key-without-scheme": {"Authorization": key},
        "admin-token": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        "webhook-secret": {"Authorization": f"Bearer {account['webhook_secret']}"},
        "x-api-key-header": {"X-API-Key": key},
    }


@pytest.mark.parametrize(("method", "path", "body"), MERCHANT_ROUTES)
async def test_every_merchant_route_refuses_bad_credentials(client, account, method, path, body):
    for name, headers in bad_credentials(account).items():
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert_unauthorized(response)
    # Nothing was changed by the refused writes.
    settings = (await client.get("/v1/settings", headers=auth(account))).json()
    assert settings["sender_name"] is None
    groups = (await client.get("/v1/lead-groups", headers=auth(account))).json()["items"]
    assert {g["status"] for g in groups} == {"active"}


async def test_valid_key_is_accepted_with_case_insensitive_scheme(client, account):
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await client.get(
            "/v1/settings", headers={"Authorization": f"{scheme} {account['api_key']}"}
        )
        assert response.status_code == 200, (scheme, response.text)
        assert response.json()["account_id"] == account["id"]


async def test_401_explains_what_to_send(client, account):
    missing = assert_unauthorized(await client.get("/v1/leads"))
    assert "Bearer" in missing["detail"]
    unknown = assert_unauthorized(
        await client.get("/v1/leads", headers={"Authorization": "Bearer lf_nope"})
    )
    assert unknown["detail"]
    assert "lf_nope" not in unknown["detail"]


# -- admin: creating accounts -------------------------------------------------------------


async def test_create_account_returns_credentials_once(client, clock):
    response = await client.post(
        "/v1/admin/accounts",
        json={"name": "  Corner Shop  "},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "name", "api_key", "webhook_secret"}
    assert created["name"] == "Corner Shop"
    assert created["id"].startswith("acc_")
    assert created["api_key"].startswith("lf_")
    assert len(created["api_key"]) >= 40
    assert created["webhook_secret"].startswith("whsec_")
    assert len(base64.b64decode(created["webhook_secret"].removeprefix("whsec_"))) >= 24

    # The key works, for this account.
    settings = await client.get("/v1/settings", headers=auth(created))
    assert settings.status_code == 200, settings.text
    assert settings.json()["account_id"] == created["id"]
    assert settings.json()["name"] == "Corner Shop"


async def test_accounts_get_distinct_credentials(client):
    first = await make_account(client, "One")
    second = await make_account(client, "One")  # names need not be unique
    assert first["id"] != second["id"]
    assert first["api_key"] != second["api_key"]
    assert first["webhook_secret"] != second["webhook_secret"]
    s1 = (await client.get("/v1/settings", headers=auth(first))).json()
    s2 = (await client.get("/v1/settings", headers=auth(second))).json()
    assert (s1["account_id"], s2["account_id"]) == (first["id"], second["id"])


async def test_only_a_hash_of_the_api_key_is_stored(client, db):
    created = await make_account(client, "Hashed")
    key = created["api_key"]
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).mappings().all()
        accounts = (await conn.execute(text("SELECT * FROM accounts"))).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert row["account_id"] == created["id"]
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    for column, value in row.items():
        assert key not in str(value), f"api_keys.{column} holds the API key"
    # A short display prefix is fine; anything close to the full key is not.
    assert len(str(row["prefix"])) <= 16
    for account_row in accounts:
        for column, value in account_row.items():
            assert key not in str(value), f"accounts.{column} holds the API key"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong"),
        pytest.param({"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}, id="prefix"),
        pytest.param({"Authorization": f"Bearer {ADMIN_TOKEN}x"}, id="suffix"),
        pytest.param({"Authorization": f"Basic {ADMIN_TOKEN}"}, id="basic"),
        pytest.param({"Authorization": ADMIN_TOKEN}, id="no-scheme"),
        pytest.param({"Authorization": "Bearer "}, id="empty"),
    ],
)
async def test_admin_refuses_wrong_token(client, db, headers):
    response = await client.post("/v1/admin/accounts", json={"name": "Nope"}, headers=headers)
    assert_unauthorized(response)
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one() == 0


async def test_admin_refuses_a_merchant_api_key(client, account):
    response = await client.post("/v1/admin/accounts", json={"name": "Nope"}, headers=auth(account))
    assert_unauthorized(response)


@pytest.mark.parametrize("configured", [None, ""], ids=["unset", "empty"])
async def test_admin_api_is_closed_without_a_configured_token(db, clock, monkeypatch, configured):
    monkeypatch.delenv("LEADFLOW_ADMIN_TOKEN", raising=False)
    settings = Settings(database_url=db.url, admin_token=configured)
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as client:
        for headers in (
            {},
            {"Authorization": "Bearer "},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            {"Authorization": "Bearer None"},
        ):
            response = await client.post(
                "/v1/admin/accounts", json={"name": "Sneaky"}, headers=headers
            )
            problem = assert_unauthorized(response)
            assert "LEADFLOW_ADMIN_TOKEN" in problem["detail"]
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one() == 0


async def test_admin_api_closed_with_default_settings(db, clock, monkeypatch):
    monkeypatch.delenv("LEADFLOW_ADMIN_TOKEN", raising=False)
    app = create_app(Settings(database_url=db.url), clock=clock, db=db, auto_migrate=False)
    async with app_client(app) as client:
        response = await client.post(
            "/v1/admin/accounts",
            json={"name": "Sneaky"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert_unauthorized(response)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"name": ""}, "name", id="empty"),
        pytest.param({"name": "   "}, "name", id="blank"),
        pytest.param({"name": "\t\n"}, "name", id="whitespace"),
        pytest.param({"name": "x" * 201}, "name", id="too-long"),
        pytest.param({"name": None}, "name", id="null"),
        pytest.param({"name": 42}, "name", id="number"),
        pytest.param({"name": "Shop\x00"}, "name", id="nul"),
        pytest.param({}, "name", id="missing"),
        pytest.param({"name": "Shop", "plan": "gold"}, "plan", id="unknown-field"),
    ],
)
async def test_create_account_validation(client, db, body, field):
    response = await client.post(
        "/v1/admin/accounts", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert_problem(response, 422, field=field, code="validation_error", typed=True, titled=True)
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one() == 0


async def test_create_account_with_malformed_json_is_422(client):
    response = await client.post(
        "/v1/admin/accounts",
        content=b'{"name": ',
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"},
    )
    problem = assert_problem(response, 422, typed=True, titled=True)
    assert [e["field"] for e in problem["errors"]] == ["body"]


async def test_auth_is_checked_before_the_body(client, account):
    # A bad token with a bad body is a 401, not a 422 that would describe the schema.
    response = await client.post(
        "/v1/admin/accounts", json={"name": ""}, headers={"Authorization": "Bearer wrong"}
    )
    assert_unauthorized(response)
    response = await client.put("/v1/settings", json={"colour": "blue"})
    assert_unauthorized(response)
    response = await client.patch("/v1/lead-groups/trial", json={"status": "paused"})
    assert_unauthorized(response)
    response = await client.get("/v1/leads", params={"limit": "0", "status": "nope"})
    assert_unauthorized(response)
