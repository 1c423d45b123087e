"""A worker that dies mid-send: before SMTP DATA its message is sent again (once), at the end
of its lease; inside DATA it becomes ``unknown`` then, never sent again, and the sequence
continues or stops as the account says."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from leadflow.kit.mail import SmtpTransport
from leadflow.lifecycle.dispatcher import Dispatcher
from leadflow.models.stats import StatsCounter
from tests.dispatch.helpers import (
    GatedTransport,
    enrollment,
    enrollments,
    event_now,
    messages,
    recipients,
)
from tests.support.api import assert_problem, auth, ok_json, put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest, purchase
from tests.support.servers import smtp_url

STEPS = [
    {"delay": "PT0S", "template": "abandoned_checkout/1"},
    {"delay": "P1D", "template": "abandoned_checkout/2"},
    {"delay": "P1D", "template": "abandoned_checkout/3"},
]


@pytest.fixture
async def make_dispatcher(mail_settings, db, clock) -> AsyncIterator[Callable[..., Dispatcher]]:
    """Independent workers, each with its own SMTP connection pool."""
    transports: list[SmtpTransport] = []

    def make(gated: bool = False, pool_size: int = 4) -> Dispatcher:
        transport = SmtpTransport(smtp_url(mail_settings), pool_size=pool_size, timeout=10)
        transports.append(transport)
        return Dispatcher(
            mail_settings, db, clock, GatedTransport(transport) if gated else transport
        )

    yield make
    for transport in transports:
        await transport.close()


async def _lead_due_now(client, account, clock, **settings: Any) -> None:
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"}, **settings)
    await create_campaign(client, account, steps=STEPS, status="active")
    await ingest(client, account, clock, event_now(clock))


async def _die(tick: asyncio.Task[Any]) -> None:
    """The worker process is killed: its tick stops where it is, nothing more is written."""
    tick.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tick


async def _die_inside_data(smtp_sink, dispatcher: Dispatcher) -> None:
    """Run a tick until the server has taken the message but not answered yet, then die."""
    in_data = threading.Event()
    accept = smtp_sink.handler.handle_DATA

    async def slow_accept(server: object, session: object, envelope: object) -> str:
        reply = await accept(server, session, envelope)
        in_data.set()
        await asyncio.sleep(1)
        return reply

    smtp_sink.handler.handle_DATA = slow_accept
    tick = asyncio.create_task(dispatcher.run_once())
    assert await asyncio.to_thread(in_data.wait, 10)
    await _die(tick)
    smtp_sink.handler.handle_DATA = accept


async def _at_lease_expiry(clock, dispatcher: Dispatcher) -> None:
    """Just before the dead worker's lease ends nothing is claimed; just after, it is."""
    lease = dt.timedelta(seconds=dispatcher.settings.dispatch_lease_seconds)
    clock.advance(lease - dt.timedelta(seconds=1))
    assert (await dispatcher.run_once()).claimed == 0
    clock.advance(seconds=2)


async def test_died_before_data_is_sent_again_once_at_lease_expiry(
    client, account, clock, make_dispatcher, smtp_sink, db
):
    await _lead_due_now(client, account, clock)
    dying, other = make_dispatcher(gated=True), make_dispatcher()
    tick = asyncio.create_task(dying.run_once())
    await asyncio.wait_for(dying.transport.entered.wait(), 10)
    await _die(tick)
    (row,) = await messages(db)
    assert row.status == "sending" and row.data_started_at is None

    await _at_lease_expiry(clock, other)
    report = await other.run_once()
    assert report.claimed == 1 and report.sent == 1 and not report.errors, report
    for _ in range(3):
        assert (await other.run_once()).claimed == 0
    assert recipients(smtp_sink.messages) == ["jane@example.com"]  # exactly once
    (row,) = await messages(db)
    assert row.status == "sent" and row.attempts == 2 and row.data_started_at is not None
    assert str(smtp_sink.messages[0]["Message-ID"]) == row.message_id_header
    enr = await enrollment(db)
    assert enr.state == "active" and enr.next_step == 2 and enr.lease_token is None


@pytest.mark.parametrize("setting", [None, "continue"])
async def test_died_inside_data_is_unknown_at_lease_expiry_and_the_sequence_continues(
    client, account, clock, make_dispatcher, smtp_sink, db, setting
):
    await _lead_due_now(
        client, account, clock, **({"after_unknown_step": setting} if setting else {})
    )
    dying, other = make_dispatcher(), make_dispatcher()
    await _die_inside_data(smtp_sink, dying)
    died_at = clock.now()
    (row,) = await messages(db)
    assert row.status == "sending" and row.data_started_at == died_at
    assert len(smtp_sink.messages) == 1  # the server has it; the worker never heard so

    await _at_lease_expiry(clock, other)
    report = await other.run_once()
    assert report.claimed == 1 and report.sent == 0 and report.stopped == 0, report
    assert (await other.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1  # never sent again
    (row,) = await messages(db)
    assert row.status == "unknown" and row.sent_at == died_at
    enr = await enrollment(db)
    assert enr.state == "active" and enr.next_step == 2
    assert enr.next_due_at == died_at + dt.timedelta(days=1)

    clock.set(died_at + dt.timedelta(days=1))
    assert (await other.run_once()).sent == 1
    assert [(m.step, m.status) for m in await messages(db)] == [(1, "unknown"), (2, "sent")]
    assert len(smtp_sink.messages) == 2


async def test_died_inside_data_stops_the_sequence_when_the_account_says_so(
    client, account, clock, make_dispatcher, smtp_sink, db
):
    await _lead_due_now(client, account, clock, after_unknown_step="stop")
    dying, other = make_dispatcher(), make_dispatcher()
    await _die_inside_data(smtp_sink, dying)

    await _at_lease_expiry(clock, other)
    report = await other.run_once()
    assert report.claimed == 1 and report.sent == 0 and report.stopped == 1, report
    (row,) = await messages(db)
    assert row.status == "unknown"
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "delivery_unknown"
    assert enr.lease_token is None
    clock.advance(days=5)
    assert (await other.run_once()).claimed == 0
    assert len(await messages(db)) == 1 and len(smtp_sink.messages) == 1


async def test_a_failed_send_after_the_data_mark_is_retried_with_a_fresh_mark(
    client, account, clock, dispatcher, smtp_sink, db
):
    """A DATA that the server answers with 4xx is known not delivered: the mark of that
    attempt does not make the retry ``unknown``."""
    await _lead_due_now(client, account, clock)
    smtp_sink.handler.reply = "451 4.3.0 try later"
    report = await dispatcher.run_once()
    assert report.retried == 1, report
    (row,) = await messages(db)
    assert row.status == "deferred" and row.data_started_at is not None

    smtp_sink.handler.reply = None
    clock.advance(hours=1)
    report = await dispatcher.run_once()
    assert report.sent == 1, report
    (row,) = await messages(db)
    assert row.status == "sent" and row.attempts == 2
    assert len(smtp_sink.messages) == 1


async def test_after_unknown_step_setting(client, account):
    settings = ok_json(await client.get("/v1/settings", headers=auth(account)))
    assert settings["after_unknown_step"] == "continue"  # the default
    assert (await put_settings(client, account, after_unknown_step="stop"))[
        "after_unknown_step"
    ] == "stop"
    kept = await put_settings(client, account, after_unknown_step=None, timezone="Europe/Berlin")
    assert kept["after_unknown_step"] == "stop"
    refused = await client.put(
        "/v1/settings", json={"after_unknown_step": "retry"}, headers=auth(account)
    )
    assert_problem(refused, 422, field="after_unknown_step")
    settings = ok_json(await client.get("/v1/settings", headers=auth(account)))
    assert settings["after_unknown_step"] == "stop"


async def test_died_after_the_server_took_it_is_sent_not_unknown(
    client, account, clock, make_dispatcher, smtp_sink, db
):
    """Two follow-ups in one batch: the server takes the first, the worker dies while the
    second is inside DATA. The first is ``sent`` (marked as the server answered, before the
    batch's outcomes were recorded), its counters and sequence recorded by the next claim;
    only the second is ``unknown``."""
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"})
    await create_campaign(client, account, steps=STEPS, status="active")
    await ingest(client, account, clock, event_now(clock, email="a@example.com", reference="a"))
    await ingest(client, account, clock, event_now(clock, email="b@example.com", reference="b"))
    in_data = threading.Event()
    accept = smtp_sink.handler.handle_DATA
    arrived: list[str] = []

    async def second_hangs(server: object, session: object, envelope: Any) -> str:
        reply = await accept(server, session, envelope)
        arrived.extend(envelope.rcpt_tos)
        if len(arrived) == 2:
            in_data.set()
            await asyncio.sleep(2)
        return reply

    smtp_sink.handler.handle_DATA = second_hangs
    dying = make_dispatcher(pool_size=1)  # one connection: one send, then the other
    tick = asyncio.create_task(dying.run_once())
    assert await asyncio.to_thread(in_data.wait, 10)
    await asyncio.sleep(0.2)  # the first one's "sent" is written while the second is in DATA
    await _die(tick)
    smtp_sink.handler.handle_DATA = accept
    first, second = arrived
    died = {row.to_email: row for row in await messages(db)}
    assert died[first].status == "sent"
    assert died[second].status == "sending" and died[second].data_started_at is not None
    assert await _followups_counted(db) == 0  # the batch's outcomes were never recorded

    other = make_dispatcher()
    await _at_lease_expiry(clock, other)
    report = await other.run_once()
    assert report.claimed == 2 and report.sent == 0, report
    after = {row.to_email: row.status for row in await messages(db)}
    assert after == {first: "sent", second: "unknown"}
    assert sorted(recipients(smtp_sink.messages)) == ["a@example.com", "b@example.com"]
    assert await _followups_counted(db) == 1  # the sent one, once
    states = {(e.state, e.next_step) for e in await enrollments(db)}
    assert states == {("active", 2)}
    assert (await other.run_once()).claimed == 0
    assert await _followups_counted(db) == 1


async def _followups_counted(db) -> int:
    async with db.session() as session:
        total = await session.execute(select(func.sum(StatsCounter.followups_sent)))
        return int(total.scalar_one() or 0)


@pytest.mark.parametrize("inside_data", [True, False], ids=["inside-data", "before-data"])
async def test_a_dead_workers_send_on_a_sequence_stopped_since_is_settled(
    client, account, clock, make_dispatcher, smtp_sink, db, inside_data
):
    """A purchase stops the sequence while the send's worker is dead: no claim comes back to
    that enrollment, so the sweep settles the send once the dead worker's lease has run out:
    ``unknown`` if DATA may have begun, withdrawn if it never began; never sent again."""
    await _lead_due_now(client, account, clock)
    dying, other = make_dispatcher(gated=not inside_data), make_dispatcher()
    if inside_data:
        await _die_inside_data(smtp_sink, dying)
    else:
        tick = asyncio.create_task(dying.run_once())
        await asyncio.wait_for(dying.transport.entered.wait(), 10)
        await _die(tick)
    delivered = len(smtp_sink.messages)
    await purchase(client, account, clock, email="jane@example.com")
    assert (await enrollment(db)).state == "stopped"
    (row,) = await messages(db)
    assert row.status == "sending"

    lease = other.settings.dispatch_lease_seconds
    clock.advance(seconds=lease - 1)  # the dead worker's lease still runs: nothing is touched
    await other.run_once()  # (its first tick sweeps; the next sweep comes a minute later)
    assert [m.status for m in await messages(db)] == ["sending"]

    clock.advance(seconds=60)  # the lease is over, and a minute has passed since the sweep
    await other.run_once()
    rows = await messages(db)
    if inside_data:
        assert [(m.status, m.sent_at) for m in rows] == [("unknown", row.data_started_at)]
    else:
        assert rows == []  # never handed over: withdrawn
    assert len(smtp_sink.messages) == delivered  # nothing sent again
    assert (await other.run_once()).claimed == 0
