"""Batches are applied set-based: the statements a batch runs do not grow with its size, and
the result is the one the events would have had one by one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, func, select

from leadflow.kit.db import Database
from leadflow.models import Enrollment, IlnDelivery, Lead, LeadEvent
from tests.support.api import auth, ok_json
from tests.support.campaigns import create_campaign, step
from tests.support.events import clock_iso, event_body, post_batch, post_event


@contextlib.contextmanager
def statements(db: Database, *, account_reads: bool = False) -> Iterator[list[str]]:
    """The SQL statements the app runs meanwhile (an executemany counts once); without the
    account look-ups of webhook authentication unless asked (they are cached a moment)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if account_reads or "\nFROM accounts \nWHERE accounts.id" not in statement:
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


def items(prefix: str, count: int, clock: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{n}",
            **event_body(
                reference=f"{prefix}_chk_{n}",
                occurred_at=clock_iso(clock, minutes=-5),
                customer={"email": f"{prefix}{n}@example.com", "language": "de"},
            ),
        }
        for n in range(count)
    ]


async def _account_with_campaign_and_endpoint(client: Any, account: dict[str, Any]) -> None:
    await create_campaign(client, account, status="active", steps=[step()])
    endpoint = {"url": "https://93.184.216.34/hook", "event_types": ["lead.captured"]}
    response = await client.post("/v1/iln/endpoints", json=endpoint, headers=auth(account))
    assert response.status_code == 201, response.text


async def test_a_batch_runs_as_many_statements_for_200_events_as_for_5(client, account, clock, db):
    await _account_with_campaign_and_endpoint(client, account)
    with statements(db) as small:
        result = ok_json(await post_batch(client, account, items("s", 5, clock), clock))
    assert result["accepted"] == 5
    with statements(db) as large:
        result = ok_json(await post_batch(client, account, items("l", 200, clock), clock))
    assert result["accepted"] == 200
    assert len(large) == len(small), (small, large)
    assert len(small) <= 20, small  # a handful per table, not one per event

    async with db.session() as session:
        for model in (Lead, LeadEvent, Enrollment, IlnDelivery):
            assert await session.scalar(select(func.count()).select_from(model)) == 205
        # Each enrollment carries its lead's source type (what the worker's claim reads).
        pairs = await session.execute(
            select(Enrollment.source_type, Lead.source_type).join(
                Lead, Lead.id == Enrollment.lead_id
            )
        )
        assert {tuple(pair) for pair in pairs} == {("abandoned_checkout", "abandoned_checkout")}


async def test_a_single_event_runs_the_same_statements_as_a_batch_of_one(
    client, account, clock, db
):
    await _account_with_campaign_and_endpoint(client, account)
    body = items("one", 1, clock)[0]
    with statements(db) as single:
        response = await post_event(
            client, account, {k: v for k, v in body.items() if k != "id"}, clock=clock
        )
        assert ok_json(response)["lead_status"] == "open"
    with statements(db) as batch:
        result = ok_json(await post_batch(client, account, items("two", 1, clock), clock))
    assert result["accepted"] == 1
    assert len(single) == len(batch), (single, batch)


async def test_a_repeated_batch_writes_nothing_and_answers_the_first_results(
    client, account, clock, db
):
    await _account_with_campaign_and_endpoint(client, account)
    events = items("r", 50, clock)
    first = ok_json(await post_batch(client, account, events, clock))
    with statements(db) as seen:
        again = ok_json(await post_batch(client, account, events, clock))
    assert (again["accepted"], again["duplicates"]) == (0, 50)
    assert [r["result"] for r in again["results"]] == [
        {**r["result"], "duplicate": True} for r in first["results"]
    ]
    writes = [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "DELETE"))]
    inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT")]
    assert writes == []
    assert len(inserts) == 1  # the events' INSERT … ON CONFLICT DO NOTHING, which adds none


async def test_concurrent_single_events_share_transactions_and_keep_their_answers(
    client, account, clock, db
):
    await _account_with_campaign_and_endpoint(client, account)
    bodies = [{k: v for k, v in b.items() if k != "id"} for b in items("c", 30, clock)]
    with statements(db) as seen:
        responses = await asyncio.gather(
            *(
                post_event(client, account, body, clock=clock, msg_id=f"c-{n}")
                for n, body in enumerate(bodies)
            )
        )
    answers = [ok_json(r) for r in responses]
    inserts = [s for s in seen if s.lstrip().startswith("INSERT INTO events")]
    assert len(inserts) < 30  # written in groups, not one transaction each
    assert len({a["event_id"] for a in answers}) == 30
    async with db.session() as session:
        leads = dict((await session.execute(select(Lead.id, Lead.reference))).all())
    # Each answer names the lead its own event made.
    for answer, body in zip(answers, bodies, strict=True):
        assert leads[answer["lead_id"]] == body["reference"]


async def test_the_same_event_sent_concurrently_is_stored_once(client, account, clock, db):
    body = {k: v for k, v in items("d", 1, clock)[0].items() if k != "id"}
    responses = await asyncio.gather(
        *(post_event(client, account, body, clock=clock, msg_id="same-id") for _ in range(8))
    )
    answers = [ok_json(r) for r in responses]
    assert sorted(a["duplicate"] for a in answers) == [False] + [True] * 7
    assert len({a["event_id"] for a in answers}) == 1
    assert len({a["lead_id"] for a in answers}) == 1
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1
        assert await session.scalar(select(func.count()).select_from(LeadEvent)) == 1


async def test_a_burst_of_webhooks_reads_its_account_once_and_a_rotation_at_once(
    client, account, clock, db
):
    bodies = [{k: v for k, v in b.items() if k != "id"} for b in items("k", 5, clock)]
    with statements(db, account_reads=True) as seen:
        for n, body in enumerate(bodies):
            ok_json(await post_event(client, account, body, clock=clock, msg_id=f"k-{n}"))
    assert sum("FROM accounts" in s for s in seen) == 1

    old = dict(account)
    response = await client.post("/v1/webhook-secret/rotate", headers=auth(account))
    assert response.status_code == 200, response.text
    rotated = {**account, "webhook_secret": response.json()["webhook_secret"]}
    body = {k: v for k, v in items("after", 1, clock)[0].items() if k != "id"}
    ok_json(await post_event(client, rotated, body, clock=clock, msg_id="after-1"))
    # The previous secret still works during the overlap; the cache did not hide the change.
    ok_json(await post_event(client, old, body, clock=clock, msg_id="after-2"))
