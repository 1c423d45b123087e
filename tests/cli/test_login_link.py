"""``leadflow accounts login-link ACCOUNT``: a single-use, short-lived link into the account's
dashboard, printed for an account named by id or by its exact name."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from tests.cli.helpers import cli_env, leadflow
from tests.support.api import assert_problem, make_account

LINK = re.compile(r"^https://leads\.example\.com/dashboard/#/login\?token=(lfl_[\w-]{40,})$")


def token_of(stdout: str) -> str:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    match = LINK.match(lines[0])
    assert match, lines[0]
    return match.group(1)


async def test_prints_a_link_that_signs_in_once(
    db: Database, client: httpx.AsyncClient, account: dict[str, Any], tmp_path: Path
) -> None:
    env = cli_env(tmp_path, database_url=db.url, base_url="https://leads.example.com/")
    by_id = await leadflow("accounts", "login-link", account["id"], env=env, cwd=tmp_path)
    assert by_id.code == 0, by_id.output
    by_name = await leadflow("accounts", "login-link", "Acme Shop", env=env, cwd=tmp_path)
    assert by_name.code == 0, by_name.output
    assert "'Acme Shop' once, until" in by_name.stderr
    first, second = token_of(by_id.stdout), token_of(by_name.stdout)
    assert first != second
    for token in (first, second):
        response = await client.post("/v1/session", json={"login_token": token})
        assert response.status_code == 201, response.text
        assert response.json()["account_id"] == account["id"]
        again = await client.post("/v1/session", json={"login_token": token})
        assert_problem(again, 401, "invalid_credentials")


async def test_the_link_expires_after_fifteen_minutes(
    db: Database,
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path, database_url=db.url, base_url="https://leads.example.com")
    ran = await leadflow("accounts", "login-link", "Acme Shop", "--json", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    made = json.loads(ran.stdout)
    assert made["account_id"] == account["id"] and made["account_name"] == "Acme Shop"
    assert token_of(made["url"]) == made["token"]
    expires = dt.datetime.fromisoformat(made["expires_at"])
    now = dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=14) < expires - now <= dt.timedelta(minutes=15)
    clock.set(expires + dt.timedelta(seconds=1))  # the app's clock, past the link's end
    refused = await client.post("/v1/session", json={"login_token": made["token"]})
    assert_problem(refused, 401, "invalid_credentials")
    clock.set(expires - dt.timedelta(seconds=1))
    signed_in = await client.post("/v1/session", json={"login_token": made["token"]})
    assert signed_in.status_code == 201, signed_in.text


async def test_an_ambiguous_or_unknown_account_is_refused(
    db: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    twins = [await make_account(client, "Twin Shop") for _ in range(2)]
    env = cli_env(tmp_path, database_url=db.url)
    for name, message in (
        ("Twin Shop", "Several accounts have this name"),
        ("twin shop", "No account has this id or name"),  # exact names only
        ("acc_0000", "No account has this id or name"),
    ):
        ran = await leadflow("accounts", "login-link", name, env=env, cwd=tmp_path)
        assert ran.code == 1, ran.output
        assert ran.stdout == ""
        assert message in ran.stderr
    # By id, either twin works.
    ran = await leadflow("accounts", "login-link", twins[1]["id"], env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    assert ran.stdout.startswith("http://127.0.0.1:8000/dashboard/#/login?token=lfl_")
