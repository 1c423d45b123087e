"""``leadflow backfill``: queued as the API queues it, run and followed to the end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models.backfills import Backfill
from leadflow.models.enrollments import Enrollment
from tests.chaos.helpers import Workers, postgres_only, worker_env
from tests.cli.helpers import cli_env, leadflow
from tests.support.campaigns import create_campaign
from tests.support.database import count
from tests.support.events import capture

LEADS = 7


async def captured(client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock) -> None:
    for n in range(LEADS):
        await capture(client, account, clock, reference=f"chk_{n}")


async def test_enrolls_the_earlier_leads_and_shows_its_progress(
    db: Database,
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    await captured(client, account, clock)
    campaign = await create_campaign(client, account, status="active")
    assert await count(db, Enrollment) == 0
    env = cli_env(tmp_path, database_url=db.url)

    ran = await leadflow("backfill", account["id"], campaign["id"], env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    match = re.fullmatch(
        rf"backfill (bfl_\w+) completed: {LEADS} leads examined, {LEADS} enrolled\n", ran.stdout
    )
    assert match, ran.output
    backfill_id = match.group(1)
    # Not a terminal: plain lines, the last one the final count (no bar, no carriage return).
    assert f"backfill {backfill_id}: examined {LEADS}/{LEADS} leads\n" in ran.stderr
    assert "\r" not in ran.stderr
    assert await count(db, Enrollment, campaign_id=campaign["id"]) == LEADS
    assert await count(db, Backfill, id=backfill_id, status="completed") == 1

    # Again: every lead is in the campaign already.
    again = await leadflow(
        "backfill", account["id"], campaign["id"], "--json", env=env, cwd=tmp_path
    )
    assert again.code == 0, again.output
    result = json.loads(again.stdout)
    assert (result["status"], result["scanned"], result["enrolled"]) == ("completed", LEADS, 0)
    assert result["finished_at"] is not None
    assert await count(db, Enrollment) == LEADS


async def test_no_wait_queues_it_for_the_workers(
    db: Database,
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    await captured(client, account, clock)
    campaign = await create_campaign(client, account, status="active")
    env = cli_env(tmp_path, database_url=db.url)

    ran = await leadflow(
        "backfill", account["id"], campaign["id"], "--no-wait", "--json", env=env, cwd=tmp_path
    )
    assert ran.code == 0, ran.output
    job = json.loads(ran.stdout)
    assert (job["status"], job["scanned"], job["campaign_id"]) == ("queued", 0, campaign["id"])
    assert await count(db, Backfill, id=job["id"], status="queued") == 1
    assert await count(db, Enrollment) == 0

    # One at a time per campaign, as through the API.
    refused = await leadflow(
        "backfill", account["id"], campaign["id"], "--no-wait", env=env, cwd=tmp_path
    )
    assert refused.code == 1, refused.output
    assert refused.stderr.strip().endswith(
        f"leadflow backfill: Backfill {job['id']} of this campaign is already queued or running."
    )
    assert await count(db, Backfill) == 1

    # Without --no-wait the command takes up the queued one (after an interruption, say).
    ran = await leadflow("backfill", account["id"], campaign["id"], env=env, cwd=tmp_path)
    assert ran.code == 0, ran.output
    assert f"backfill {job['id']} was queued: following it\n" in ran.stderr
    assert ran.stdout == (
        f"backfill {job['id']} completed: {LEADS} leads examined, {LEADS} enrolled\n"
    )
    assert await count(db, Backfill) == 1
    assert await count(db, Enrollment, campaign_id=campaign["id"]) == LEADS


async def test_a_campaign_not_running_is_refused(
    db: Database,
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    await captured(client, account, clock)
    draft = await create_campaign(client, account)
    env = cli_env(tmp_path, database_url=db.url)
    ran = await leadflow("backfill", account["id"], draft["id"], env=env, cwd=tmp_path)
    assert ran.code == 1, ran.output
    assert "leadflow backfill: Activate the campaign before backfilling." in ran.stderr
    assert await count(db, Backfill) == 0
    assert await count(db, Enrollment) == 0

    unknown = await leadflow("backfill", "acc_unknown", draft["id"], env=env, cwd=tmp_path)
    assert unknown.code == 1, unknown.output
    assert "leadflow backfill:" in unknown.stderr


async def test_a_running_worker_may_take_it_the_command_follows_it_to_the_end(
    db: Database,
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    """With workers running (PostgreSQL: several processes on one database), whichever of
    them or the command claims the backfill runs it, once; the command reports the end."""
    postgres_only(db)
    await captured(client, account, clock)
    campaign = await create_campaign(client, account, status="active")
    workers = Workers(worker_env(db.url), tmp_path)
    try:
        await workers.start(2)
        await workers.wait_ready()
        env = cli_env(tmp_path, database_url=db.url)
        ran = await leadflow(
            "backfill", account["id"], campaign["id"], "--json", env=env, cwd=tmp_path
        )
    finally:
        await workers.close()
    assert ran.code == 0, ran.output + workers.logs()
    result = json.loads(ran.stdout)
    assert (result["status"], result["scanned"], result["enrolled"]) == ("completed", LEADS, LEADS)
    assert await count(db, Enrollment, campaign_id=campaign["id"]) == LEADS
    assert await count(db, Backfill) == 1
