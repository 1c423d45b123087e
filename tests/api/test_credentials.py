"""Credentials through the API and the CLI: named API keys (list, create, revoke, last use)
and the rotation of the account's webhook secret with its overlap."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from leadflow.cli import main
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.kit.secrets import current_keyring, use_keyring
from leadflow.models.accounts import ApiKey
from tests.support.api import assert_problem, auth, ok_json
from tests.support.events import lead_event, post_event


async def _create_key(
    client: httpx.AsyncClient, account: dict[str, Any], name: str
) -> dict[str, Any]:
    response = await client.post("/v1/api-keys", json={"name": name}, headers=auth(account))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _keys(client: httpx.AsyncClient, account: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok_json(await client.get("/v1/api-keys", headers=auth(account)))[
        "items"
    ]
    return items


def _moment(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _as(account: dict[str, Any], key: str) -> dict[str, Any]:
    return {**account, "api_key": key}


# --- API keys -------------------------------------------------------------------------------


async def test_a_created_key_is_shown_once_listed_by_name_and_works(
    client: httpx.AsyncClient, account: dict[str, Any], db: Database
) -> None:
    created = await _create_key(client, account, "  zapier  ")
    assert created["name"] == "zapier"
    assert created["key"].startswith("lf_")
    assert created["key"].startswith(created["prefix"])
    assert created["last_used_at"] is None

    listed = await _keys(client, account)
    assert [k["name"] for k in listed] == ["default", "zapier"]
    assert all("key" not in k for k in listed)
    assert {k["id"] for k in listed} == {listed[0]["id"], created["id"]}

    ok_json(await client.get("/v1/settings", headers=auth(_as(account, created["key"]))))
    # Only the hash is stored.
    async with db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT key_hash, prefix FROM api_keys"))).all()
    assert created["key"] not in {value for row in stored for value in row}


async def test_a_revoked_key_gets_401_at_once(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    spare = await _create_key(client, account, "spare")
    first_id = (await _keys(client, account))[0]["id"]
    # The key of this very request may be revoked: the spare one stays.
    response = await client.delete(f"/v1/api-keys/{first_id}", headers=auth(account))
    assert response.status_code == 204, response.text

    problem = assert_problem(
        await client.get("/v1/settings", headers=auth(account)), 401, "unauthorized"
    )
    assert "revoked" in problem["detail"]
    assert [k["id"] for k in await _keys(client, _as(account, spare["key"]))] == [spare["id"]]
    # Revoked is gone: a second revocation does not find it.
    assert_problem(
        await client.delete(f"/v1/api-keys/{first_id}", headers=auth(_as(account, spare["key"]))),
        404,
        "not_found",
    )


async def test_the_last_key_cannot_be_revoked(
    client: httpx.AsyncClient, account: dict[str, Any]
) -> None:
    (only,) = await _keys(client, account)
    problem = assert_problem(
        await client.delete(f"/v1/api-keys/{only['id']}", headers=auth(account)),
        409,
        "last_api_key",
        complete=True,
    )
    assert "create another key" in problem["detail"]
    ok_json(await client.get("/v1/settings", headers=auth(account)))


async def test_another_accounts_keys_are_invisible(
    client: httpx.AsyncClient, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    theirs = await _create_key(client, other_account, "theirs")
    await _create_key(client, account, "mine")  # so the refusal is not about the last key
    assert "theirs" not in {k["name"] for k in await _keys(client, account)}
    assert_problem(
        await client.delete(f"/v1/api-keys/{theirs['id']}", headers=auth(account)),
        404,
        "not_found",
    )
    # Still working for its owner.
    ok_json(await client.get("/v1/settings", headers=auth(_as(other_account, theirs["key"]))))


async def test_last_use_is_recorded_to_the_minute(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, db: Database
) -> None:
    async def last_used() -> list[Any]:
        async with db.session() as session:
            return list(await session.scalars(select(ApiKey.last_used_at)))

    assert await last_used() == [None]
    listed = await _keys(client, account)  # this request is the first use
    first = clock.now()
    assert _moment(listed[0]["last_used_at"]) == first
    for _ in range(3):
        clock.advance(seconds=15)
        ok_json(await client.get("/v1/settings", headers=auth(account)))
    # Written once in that minute, not once per request.
    assert await last_used() == [first]
    clock.advance(seconds=20)  # 65 s after the first use
    listed = await _keys(client, account)
    assert _moment(listed[0]["last_used_at"]) == clock.now()
    assert await last_used() == [clock.now()]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 101}, "name"), ({"n": 1}, "n")],
)
async def test_bad_key_names_are_422(
    client: httpx.AsyncClient, account: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/api-keys", json=body, headers=auth(account))
    assert_problem(response, 422, "validation_error", field=field)
    assert len(await _keys(client, account)) == 1


async def test_key_routes_need_a_key(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/api-keys"),
        ("POST", "/v1/api-keys"),
        ("DELETE", "/v1/api-keys/key_x"),
        ("POST", "/v1/webhook-secret/rotate"),
    ):
        assert_problem(await client.request(method, path), 401, "unauthorized")


# --- webhook secret rotation ----------------------------------------------------------------


async def test_the_old_secret_works_during_the_overlap_and_fails_after(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock
) -> None:
    old = dict(account)
    rotated = ok_json(await client.post("/v1/webhook-secret/rotate", headers=auth(account)))
    new = {**account, "webhook_secret": rotated["webhook_secret"]}
    assert rotated["webhook_secret"].startswith("whsec_")
    assert rotated["webhook_secret"] != account["webhook_secret"]
    expires = dt.datetime.fromisoformat(
        rotated["previous_secret_expires_at"].replace("Z", "+00:00")
    )
    assert expires == clock.now() + dt.timedelta(hours=24)

    for n, signer in enumerate((old, new)):
        event = lead_event(reference=f"chk_during_{n}")
        ok_json(await post_event(client, signer, event, clock=clock))

    clock.set(expires + dt.timedelta(seconds=1))
    problem = assert_problem(
        await post_event(client, old, lead_event(reference="chk_after_old"), clock=clock), 401
    )
    assert "signature" in problem["detail"]
    ok_json(await post_event(client, new, lead_event(reference="chk_after_new"), clock=clock))


async def test_a_second_rotation_ends_the_older_secret(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock
) -> None:
    first = ok_json(await client.post("/v1/webhook-secret/rotate", headers=auth(account)))
    second = ok_json(await client.post("/v1/webhook-secret/rotate", headers=auth(account)))
    assert_problem(await post_event(client, account, lead_event(), clock=clock), 401)
    for n, secret in enumerate((first["webhook_secret"], second["webhook_secret"])):
        signer = {**account, "webhook_secret": secret}
        ok_json(await post_event(client, signer, lead_event(reference=f"c{n}"), clock=clock))


async def test_rotation_is_per_account(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    other_account: dict[str, Any],
    clock: ManualClock,
) -> None:
    ok_json(await client.post("/v1/webhook-secret/rotate", headers=auth(other_account)))
    clock.advance(hours=25)
    ok_json(await post_event(client, account, lead_event(), clock=clock))
    assert_problem(await post_event(client, other_account, lead_event(), clock=clock), 401)


# --- the CLI --------------------------------------------------------------------------------


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_keys_and_webhook_secret_from_the_cli(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``leadflow keys list|create|revoke`` and ``leadflow webhook-secret rotate``, as real
    processes against the test database."""
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", db.url)
    acc = account["id"]
    created = json.loads(await asyncio.to_thread(_cli, "keys", "create", acc, "cli", "--json"))
    assert created["name"] == "cli"
    ok_json(await client.get("/v1/settings", headers=auth(_as(account, created["key"]))))

    listed = json.loads(await asyncio.to_thread(_cli, "keys", "list", acc, "--json"))
    assert [k["name"] for k in listed] == ["default", "cli"]
    first_id = listed[0]["id"]
    await asyncio.to_thread(_cli, "keys", "revoke", acc, first_id)
    assert_problem(await client.get("/v1/settings", headers=auth(account)), 401)

    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "leadflow", "keys", "revoke", acc, created["id"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "only active API key" in refused.stderr

    rotated = json.loads(
        await asyncio.to_thread(
            _cli, "webhook-secret", "rotate", acc, "--overlap-hours", "0", "--json"
        )
    )
    assert rotated["previous_secret_expires_at"] is None  # a leaked secret: dropped at once
    assert_problem(await post_event(client, account, lead_event(), clock=clock), 401)
    signer = {**account, "webhook_secret": rotated["webhook_secret"]}
    ok_json(await post_event(client, signer, lead_event(), clock=clock))


async def test_cli_names_an_unknown_account(
    db: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", db.url)
    keyring = current_keyring()
    try:
        code = await asyncio.to_thread(main, ["keys", "list", "acc_nope"])
    finally:
        use_keyring(keyring)
    assert code == 1
    assert "account not found" in capsys.readouterr().err
