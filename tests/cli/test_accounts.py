"""``leadflow accounts list``: every account, its counts, and never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from leadflow.kit.db import Database
from tests.cli.helpers import cli_env, leadflow
from tests.support.campaigns import create_campaign


async def test_lists_every_account_with_its_counts_and_no_secret(
    db: Database, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    env = cli_env(tmp_path, database_url=db.url)
    created = []
    for name in ("Acme Shop", "Other Shop"):
        ran = await leadflow("accounts", "create", name, "--json", env=env, cwd=tmp_path)
        assert ran.code == 0, ran.output
        created.append(json.loads(ran.stdout))
    acme, other = created
    ran = await leadflow("keys", "create", acme["id"], "ci", "--json", env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    second_key = json.loads(ran.stdout)["key"]
    await create_campaign(client, other, name="One")
    await create_campaign(client, other, name="Two")

    listed = await leadflow("accounts", "list", "--json", env=env, cwd=tmp_path)
    assert listed.code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["api_keys"], r["campaigns"]) for r in rows] == [
        (acme["id"], "Acme Shop", 2, 0),
        (other["id"], "Other Shop", 1, 2),
    ]
    assert all(r["lead_management_enabled"] is True for r in rows)
    assert rows[0]["created_at"] <= rows[1]["created_at"]

    plain = await leadflow("accounts", "list", env=env, cwd=tmp_path)
    assert plain.code == 0, plain.output
    lines = plain.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{acme['id']}  'Acme Shop'  created ")
    assert lines[0].endswith("  api keys 2  campaigns 0  lead management on")
    assert lines[1].endswith("  api keys 1  campaigns 2  lead management on")

    for output in (listed.output, plain.output):
        for secret in (acme["api_key"], acme["webhook_secret"], other["api_key"], second_key):
            assert secret not in output


async def test_no_account_lists_nothing(db: Database, tmp_path: Path) -> None:
    env = cli_env(tmp_path, database_url=db.url)
    listed = await leadflow("accounts", "list", "--json", env=env, cwd=tmp_path)
    assert listed.code == 0, listed.output
    assert json.loads(listed.stdout) == []
    plain = await leadflow("accounts", "list", env=env, cwd=tmp_path)
    assert (plain.code, plain.stdout) == (0, "")
