"""The decision is written exactly once however many workers evaluate at the same time
(PostgreSQL: several real connections; SQLite has one writer and runs a single process)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from leadflow.abtest.service import evaluate, evaluate_running
from tests.abtest.helpers import ab_row, decided_deliveries, subscribe_decisions
from tests.support.campaigns import patch_campaign
from tests.support.events import purchase
from tests.support.results import ab_result, create_ab_campaign, leads_per_variant, no_min_delays

WORKERS = 6


async def test_concurrent_evaluations_decide_once(backend, client, account, clock, dispatcher, db):
    if backend != "postgresql":
        pytest.skip("concurrent workers need PostgreSQL (SQLite: one process, one writer)")
    await no_min_delays(client, account)
    endpoint_id = await subscribe_decisions(client, account)
    campaign, ids = await create_ab_campaign(
        client, account, {"criterion": "conversions", "threshold": 3}
    )
    cid = campaign["id"]
    leads = await leads_per_variant(client, account, clock, db, ids, {"A": 1, "B": 1})
    assert (await dispatcher.run_once()).sent == 2
    clock.advance(minutes=10)
    await purchase(client, account, clock, leads["B"][0])
    # Lower the threshold: met now, but saving settings evaluates nothing.
    response = await patch_campaign(
        client, account, cid, ab_test={"criterion": "conversions", "threshold": 1}
    )
    assert response.status_code == 200, response.text
    assert (await ab_row(db, cid)).state == "running"
    assert await decided_deliveries(db) == []

    start = clock.now()
    nows = [start + dt.timedelta(seconds=i) for i in range(WORKERS)]

    async def worker(now: dt.datetime) -> bool:
        async with db.session() as session:
            return await evaluate(session, cid, now)

    async with asyncio.timeout(20):
        results = await asyncio.gather(*(worker(now) for now in nows))
    assert results.count(True) == 1, results
    won_at = nows[results.index(True)]

    row = await ab_row(db, cid)
    assert (row.state, row.winner_variant_id) == ("decided", ids["B"])
    assert row.decided_at == won_at and row.updated_at == won_at
    assert row.reason == "variant B reached 1 conversion first"
    (delivery,) = await decided_deliveries(db)
    assert delivery.endpoint_id == endpoint_id and delivery.status == "pending"
    assert delivery.payload["data"]["winner_variant_id"] == ids["B"]
    assert delivery.payload["data"]["decided_at"] == won_at.isoformat().replace("+00:00", "Z")

    # Later evaluations, by the worker job or by hand, change nothing.
    clock.advance(minutes=5)
    assert await evaluate_running(db, clock) == 0
    async with asyncio.timeout(20):
        again = await asyncio.gather(*(worker(clock.now()) for _ in range(WORKERS)))
    assert again == [False] * WORKERS
    assert len(await decided_deliveries(db)) == 1
    result = await ab_result(client, account, cid)
    assert result["decided_at"] == won_at.isoformat().replace("+00:00", "Z")
