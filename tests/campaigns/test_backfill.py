"""Backfilling a campaign: a queued job the worker works through in chunks, with progress."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import select, update

from leadflow.abtest.counters import variant_counts
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.lifecycle.backfill import run_backfills, run_chunk
from leadflow.lifecycle.enrollment import choose_variant
from leadflow.models import Backfill, Enrollment, Variant
from leadflow.worker import build_worker
from tests.campaigns.helpers import enrollment_of
from tests.support.api import assert_problem, auth
from tests.support.campaigns import create_campaign, variant
from tests.support.database import count
from tests.support.events import NOW, capture, purchase


async def start(
    client: httpx.AsyncClient, account: dict[str, Any], campaign_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/campaigns/{campaign_id}/backfill", json=body, headers=auth(account)
    )


async def backfilled(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    db: Database,
    clock: ManualClock,
    campaign_id: str,
    **body: Any,
) -> dict[str, Any]:
    """Queue a backfill, let a worker run it to the end, and return it as the API shows it."""
    response = await start(client, account, campaign_id, **body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert (job["scanned"], job["enrolled"], job["started_at"], job["finished_at"]) == (
        0,
        0,
        None,
        None,
    )
    location = response.headers["location"]
    assert location == f"/v1/campaigns/{campaign_id}/backfills/{job['id']}"
    assert await run_backfills(db, clock) == 1
    done = await client.get(location, headers=auth(account))
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    assert result["status"] == "completed"
    assert result["finished_at"] is not None
    return result


async def active(client, account, name: str, **overrides: Any) -> dict[str, Any]:
    return await create_campaign(client, account, name=name, status="active", **overrides)


async def campaign_of(db, lead_id: str) -> str | None:
    enrollment = await enrollment_of(db, lead_id)
    return enrollment.campaign_id if enrollment else None


async def test_backfill_enrolls_open_matching_leads_once(client, account, clock, db):
    campaign = await create_campaign(client, account, name="German carts", languages=["de"])
    german = await capture(client, account, clock, reference="chk_1")
    another = await capture(
        client, account, clock, reference="chk_2", customer={"language": "de-AT"}
    )
    french = await capture(client, account, clock, reference="chk_3", customer={"language": "fr"})
    converted = await capture(client, account, clock, reference="chk_4")
    assert await purchase(
        client, account, clock, reference="chk_4", occurred_at="2026-01-15T11:30:00Z", bare=False
    ) == [converted]
    trial = await capture(client, account, clock, reference="sub_1", type="trial.started")
    path = f"/v1/campaigns/{campaign['id']}"

    # Inactive: no backfill.
    refused = await start(client, account, campaign["id"])
    assert_problem(refused, 409, code="campaign_inactive", typed=True)
    assert await count(db, Backfill) == 0

    on = await client.patch(path, json={"status": "active"}, headers=auth(account))
    assert on.status_code == 200
    # Activation alone does not pick up earlier leads.
    assert await count(db, Enrollment) == 0

    clock.advance(hours=5)
    job = await backfilled(client, account, db, clock, campaign["id"])
    # The open leads of the campaign's source: the three checkouts (one is French).
    assert (job["scanned"], job["enrolled"]) == (3, 2)
    assert job["campaign_id"] == campaign["id"]
    assert job["started_at"] == job["finished_at"] == "2026-01-15T17:00:00Z"
    for lead_id in (german, another):
        enrollment = await enrollment_of(db, lead_id)
        assert enrollment is not None
        assert enrollment.campaign_id == campaign["id"]
        # Still due after the delay from capture (so in the past: goes out at once).
        assert enrollment.next_due_at == dt.datetime(2026, 1, 15, 13, 0, tzinfo=dt.UTC)
        assert enrollment.created_at == NOW + dt.timedelta(hours=5)
    for lead_id in (french, converted, trial):
        assert await enrollment_of(db, lead_id) is None

    again = await backfilled(client, account, db, clock, campaign["id"])
    # The open checkouts are read again; the two enrolled ones are skipped, the French one
    # still does not match.
    assert (again["scanned"], again["enrolled"]) == (3, 0)
    assert await count(db, Enrollment) == 2


async def test_backfill_skips_leads_in_another_campaign(client, account, clock, db):
    first = await active(client, account, "Carts first")
    taken = await capture(client, account, clock, reference="chk_1")
    assert await campaign_of(db, taken) == first["id"]
    second = await create_campaign(client, account, name="Carts second")
    free = await capture(client, account, clock, reference="chk_2")  # joins `first` too
    await client.patch(
        f"/v1/campaigns/{first['id']}", json={"status": "inactive"}, headers=auth(account)
    )
    late = await capture(client, account, clock, reference="chk_3")
    assert await enrollment_of(db, late) is None
    await client.patch(
        f"/v1/campaigns/{second['id']}", json={"status": "active"}, headers=auth(account)
    )
    assert (await backfilled(client, account, db, clock, second["id"]))["enrolled"] == 1
    assert await campaign_of(db, taken) == first["id"]
    assert await campaign_of(db, free) == first["id"]
    assert await campaign_of(db, late) == second["id"]


async def test_backfill_captured_from(client, account, clock, db):
    campaign = await create_campaign(client, account, name="Recent carts")
    old = await capture(
        client, account, clock, reference="chk_1", occurred_at="2026-01-10T10:00:00Z"
    )
    recent = await capture(
        client, account, clock, reference="chk_2", occurred_at="2026-01-15T10:00:00Z"
    )
    path = f"/v1/campaigns/{campaign['id']}"
    await client.patch(path, json={"status": "active"}, headers=auth(account))
    bad = await start(client, account, campaign["id"], captured_from="2026-01-14T00:00:00")
    assert_problem(bad, 422, field="captured_from", typed=True)
    assert await count(db, Backfill) == 0
    job = await backfilled(
        client, account, db, clock, campaign["id"], captured_from="2026-01-14T00:00:00Z"
    )
    assert (job["captured_from"], job["scanned"], job["enrolled"]) == (
        "2026-01-14T00:00:00Z",
        1,
        1,
    )
    assert await enrollment_of(db, old) is None
    assert await campaign_of(db, recent) == campaign["id"]


async def test_backfill_of_an_archived_campaign_is_409(client, account, clock, db):
    campaign = await create_campaign(client, account, name="Carts")
    await capture(client, account, clock, reference="chk_1")
    path = f"/v1/campaigns/{campaign['id']}"
    await client.patch(path, json={"status": "active"}, headers=auth(account))
    await client.delete(path, headers=auth(account))
    response = await start(client, account, campaign["id"])
    assert_problem(response, 409, typed=True)
    assert await count(db, Enrollment) == 0
    assert await count(db, Backfill) == 0


async def test_backfill_of_an_ended_campaign_is_409(client, account, clock, db):
    # Leads enrolled into an ended campaign would be stopped at once and could then never
    # join another campaign (one enrollment per lead).
    campaign = await create_campaign(
        client, account, name="Carts January", ends_at="2026-01-20T00:00:00Z"
    )
    lead_id = await capture(client, account, clock, reference="chk_1")
    path = f"/v1/campaigns/{campaign['id']}"
    await client.patch(path, json={"status": "active"}, headers=auth(account))
    clock.set(dt.datetime(2026, 1, 21, tzinfo=dt.UTC))
    response = await start(client, account, campaign["id"])
    assert_problem(response, 409, code="campaign_ended", typed=True)
    assert await enrollment_of(db, lead_id) is None


async def test_backfill_only_takes_the_accounts_own_leads(
    client, account, other_account, clock, db
):
    campaign = await create_campaign(client, account, name="Carts")
    mine = await capture(client, account, clock, reference="chk_1")
    theirs = await capture(client, other_account, clock, reference="chk_1")
    path = f"/v1/campaigns/{campaign['id']}"
    await client.patch(path, json={"status": "active"}, headers=auth(account))
    job = await backfilled(client, account, db, clock, campaign["id"])
    assert (job["scanned"], job["enrolled"]) == (1, 1)
    assert await campaign_of(db, mine) == campaign["id"]
    assert await enrollment_of(db, theirs) is None
    # Nor does the other account see the backfill.
    location = f"{path}/backfills/{job['id']}"
    assert (await client.get(location, headers=auth(other_account))).status_code == 404


async def test_one_backfill_at_a_time_per_campaign(client, account, clock, db):
    campaign = await active(client, account, "Carts")
    other = await active(client, account, "Orders", source="unfinished_order")
    first = await start(client, account, campaign["id"])
    assert first.status_code == 202
    second = await start(client, account, campaign["id"])
    assert_problem(second, 409, code="backfill_in_progress", typed=True)
    assert first.json()["id"] in second.json()["detail"]
    # Another campaign's backfill is independent.
    assert (await start(client, account, other["id"])).status_code == 202
    assert await run_backfills(db, clock) == 2
    # Once it is over, the campaign can be backfilled again.
    assert (await start(client, account, campaign["id"])).status_code == 202


async def test_unknown_backfill_is_404(client, account, clock, db):
    campaign = await active(client, account, "Carts")
    other = await active(client, account, "Orders", source="unfinished_order")
    job = (await start(client, account, campaign["id"])).json()
    missing = await client.get(
        f"/v1/campaigns/{campaign['id']}/backfills/bfl_missing", headers=auth(account)
    )
    assert_problem(missing, 404, typed=True)
    # A backfill is only found under its own campaign.
    elsewhere = await client.get(
        f"/v1/campaigns/{other['id']}/backfills/{job['id']}", headers=auth(account)
    )
    assert_problem(elsewhere, 404, typed=True)


async def _leads(client, account, clock, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append(await capture(client, account, clock, reference=f"chk_{i}"))
    return ids


async def test_progress_is_committed_chunk_by_chunk_and_resumes(client, account, clock, db):
    """Each chunk commits its enrollments with the counts and the resume point; a worker that
    stops between chunks leaves the rest to the next run, which enrolls each lead once."""
    campaign = await create_campaign(client, account, name="Carts")
    lead_ids = await _leads(client, account, clock, 7)
    await client.patch(
        f"/v1/campaigns/{campaign['id']}", json={"status": "active"}, headers=auth(account)
    )
    job = (await start(client, account, campaign["id"])).json()
    location = f"/v1/campaigns/{campaign['id']}/backfills/{job['id']}"

    chunks = 0

    def after_two_chunks() -> bool:
        nonlocal chunks
        chunks += 1
        return chunks > 2

    clock.advance(minutes=1)
    assert await run_backfills(db, clock, size=3, stopping=after_two_chunks) == 0
    halfway = (await client.get(location, headers=auth(account))).json()
    assert (halfway["status"], halfway["scanned"], halfway["enrolled"]) == ("running", 6, 6)
    assert halfway["started_at"] == "2026-01-15T12:01:00Z"
    assert halfway["finished_at"] is None
    assert await count(db, Enrollment) == 6
    # The stopped worker gave its lease up: the next run resumes at once, from lead 7.
    clock.advance(minutes=1)
    assert await run_backfills(db, clock, size=3) == 1
    done = (await client.get(location, headers=auth(account))).json()
    assert (done["status"], done["scanned"], done["enrolled"]) == ("completed", 7, 7)
    assert done["started_at"] == "2026-01-15T12:01:00Z"
    assert done["finished_at"] == "2026-01-15T12:02:00Z"
    enrolled = Counter()
    async with db.session() as session:
        for lead_id in (await session.execute(select(Enrollment.lead_id))).scalars():
            enrolled[lead_id] += 1
    assert enrolled == Counter(lead_ids)


async def test_a_crashed_workers_backfill_is_taken_over_after_its_lease(client, account, clock, db):
    campaign = await create_campaign(client, account, name="Carts")
    await _leads(client, account, clock, 4)
    await client.patch(
        f"/v1/campaigns/{campaign['id']}", json={"status": "active"}, headers=auth(account)
    )
    job = (await start(client, account, campaign["id"])).json()
    # A worker claims it, commits one chunk and dies (keeps its lease).
    async with db.session() as session:
        await session.execute(
            update(Backfill)
            .where(Backfill.id == job["id"])
            .values(
                status="running",
                lease_token="dead",
                lease_until=clock.now() + dt.timedelta(minutes=5),
                started_at=clock.now(),
            )
        )
    async with db.session() as session:
        assert await run_chunk(session, job["id"], "dead", clock.now(), size=2)
    # While the lease holds, nobody else touches it.
    assert await run_backfills(db, clock) == 0
    clock.advance(minutes=6)
    assert await run_backfills(db, clock) == 1
    async with db.session() as session:
        row = await session.get_one(Backfill, job["id"])
        assert (row.status, row.scanned, row.enrolled) == ("completed", 4, 4)
        assert row.lease_token is None
        # The dead worker cannot write to it any more.
        assert not await run_chunk(session, job["id"], "dead", clock.now(), size=2)
    assert await count(db, Enrollment) == 4


async def test_a_campaign_stopped_meanwhile_stops_the_backfill(client, account, clock, db):
    campaign = await create_campaign(client, account, name="Carts")
    await _leads(client, account, clock, 3)
    path = f"/v1/campaigns/{campaign['id']}"
    await client.patch(path, json={"status": "active"}, headers=auth(account))
    job = (await start(client, account, campaign["id"])).json()
    await client.patch(path, json={"status": "inactive"}, headers=auth(account))
    assert await run_backfills(db, clock) == 1
    stopped = (await client.get(f"{path}/backfills/{job['id']}", headers=auth(account))).json()
    assert stopped["status"] == "stopped"
    assert stopped["reason"] == "Activate the campaign before backfilling."
    assert stopped["enrolled"] == 0
    assert await count(db, Enrollment) == 0


async def test_backfill_splits_by_the_hash_and_counts_per_variant(client, account, clock, db):
    campaign = await create_campaign(client, account, name="Carts")
    added = await client.post(
        f"/v1/campaigns/{campaign['id']}/variants", json=variant("B"), headers=auth(account)
    )
    assert added.status_code == 201, added.text
    lead_ids = await _leads(client, account, clock, 12)
    await client.patch(
        f"/v1/campaigns/{campaign['id']}", json={"status": "active"}, headers=auth(account)
    )
    await backfilled(client, account, db, clock, campaign["id"])
    async with db.session() as session:
        variants = list(
            (
                await session.execute(
                    select(Variant)
                    .where(Variant.campaign_id == campaign["id"])
                    .order_by(Variant.created_at, Variant.id)
                )
            ).scalars()
        )
        expected = Counter(choose_variant(lead_id, variants).id for lead_id in lead_ids)
        for lead_id in lead_ids:
            enrollment = await enrollment_of(db, lead_id)
            assert enrollment is not None
            assert enrollment.variant_id == choose_variant(lead_id, variants).id
        counts = await variant_counts(session, account["id"], campaign["id"])
    assert {v: assigned for v, (assigned, _) in counts.items()} == dict(expected)
    result = await client.get(f"/v1/campaigns/{campaign['id']}/ab-test", headers=auth(account))
    assert {v["variant_id"]: v["leads_assigned"] for v in result.json()["variants"]} == dict(
        expected
    )


async def test_the_worker_runs_backfills(settings, client, account, clock, db):
    """`leadflow serve` and `leadflow worker` run the backfill job with the others."""
    worker = build_worker(settings, db, clock)
    assert "backfills" in worker.jobs
    campaign = await create_campaign(client, account, name="Carts")
    await _leads(client, account, clock, 2)
    await client.patch(
        f"/v1/campaigns/{campaign['id']}", json={"status": "active"}, headers=auth(account)
    )
    job = (await start(client, account, campaign["id"])).json()
    run, _every = worker.jobs["backfills"]
    await run()  # starts the runner and returns: a backfill outlasts the scheduler's ticks
    (backfills,) = [j for j in worker.running if j.name == "backfills"]
    await backfills.drain()
    done = await client.get(
        f"/v1/campaigns/{campaign['id']}/backfills/{job['id']}", headers=auth(account)
    )
    assert (done.json()["status"], done.json()["enrolled"]) == ("completed", 2)
