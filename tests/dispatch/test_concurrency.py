"""Several workers, one database: every follow-up goes out exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy.exc import IntegrityError

from leadflow.kit.ids import new_id
from leadflow.kit.mail import SmtpTransport
from leadflow.lifecycle.dispatcher import Dispatcher, DispatchReport
from leadflow.models.enrollments import Message
from tests.dispatch.helpers import (
    GatedTransport,
    enrollment,
    enrollments,
    event_now,
    messages,
    recipients,
)
from tests.support.api import ok_json, put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import ingest, post_batch, purchase
from tests.support.servers import smtp_url

LEADS = 500
IMMEDIATE = [
    {"delay": "PT0S", "template": "abandoned_checkout/1"},
    {"delay": "P1D", "template": "abandoned_checkout/2"},
]


def _postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SKIP LOCKED and concurrent writers: PostgreSQL only")


@pytest.fixture
async def make_dispatcher(mail_settings, db, clock) -> AsyncIterator[Callable[..., Dispatcher]]:
    """Independent workers, each with its own SMTP connection pool."""
    transports: list[SmtpTransport] = []

    def make(gated: bool = False, **overrides: object) -> Dispatcher:
        settings = mail_settings.model_copy(update=overrides) if overrides else mail_settings
        transport = SmtpTransport(smtp_url(settings), pool_size=4, timeout=10)
        transports.append(transport)
        return Dispatcher(settings, db, clock, GatedTransport(transport) if gated else transport)

    yield make
    for transport in transports:
        await transport.close()


@pytest.fixture
def quick_gil_handoff() -> Iterator[None]:
    """The SMTP sink is a thread of this process: with the default 5 ms switch interval the
    workers' socket calls queue behind it for the GIL. Not a behaviour change, only speed."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    yield
    sys.setswitchinterval(previous)


async def _immediate_campaign(client, account) -> None:
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S"})
    await create_campaign(client, account, steps=IMMEDIATE, status="active")


async def _drain(dispatcher: Dispatcher, rounds: int = 50) -> DispatchReport:
    total = DispatchReport()
    for _ in range(rounds):
        report = await dispatcher.run_once()
        total.claimed += report.claimed
        total.sent += report.sent
        total.skipped += report.skipped
        total.errors += report.errors
        if report.claimed == 0:
            return total
    raise AssertionError(f"still claiming after {rounds} rounds")


async def test_three_workers_send_500_followups_exactly_once(
    client, account, clock, make_dispatcher, smtp_sink, db, backend, quick_gil_handoff
):
    _postgres_only(backend)
    import time

    print("start", time.monotonic())
    await _immediate_campaign(client, account)
    for chunk in range(0, LEADS, 250):
        events = []
        for i in range(chunk, chunk + 250):
            event = event_now(clock, email=f"lead{i:03d}@example.com", reference=f"chk_{i}")
            events.append({**event, "id": f"evt_{i}"})
        result = ok_json(await post_batch(client, account, events, clock))
        assert result["accepted"] == 250 and result["invalid"] == 0
    assert len(await enrollments(db)) == LEADS

    import time

    print("ingested", time.monotonic())
    workers = [make_dispatcher(dispatch_batch_size=50) for _ in range(3)]
    reports = await asyncio.gather(*(_drain(w) for w in workers))

    print("dispatched", time.monotonic())
    assert [r.errors for r in reports] == [[], [], []]
    assert sum(r.sent for r in reports) == LEADS
    assert all(r.sent > 0 for r in reports), [r.sent for r in reports]  # all three took part
    received = smtp_sink.messages
    assert len(received) == LEADS
    counts = Counter(recipients(received))
    assert len(counts) == LEADS and set(counts.values()) == {1}
    assert len({m["Message-ID"] for m in received}) == LEADS
    rows = await messages(db)
    assert len(rows) == LEADS
    assert {r.status for r in rows} == {"sent"} and {r.step for r in rows} == {1}
    assert {e.next_step for e in await enrollments(db)} == {2}
    # Nothing left: another round finds nothing due.
    assert sum([(await w.run_once()).claimed for w in workers]) == 0


async def test_expired_lease_lets_another_worker_take_over(
    client, account, clock, make_dispatcher, smtp_sink, db, backend
):
    _postgres_only(backend)
    await _immediate_campaign(client, account)
    for i in range(3):
        await ingest(
            client,
            account,
            clock,
            event_now(clock, email=f"crash{i}@example.com", reference=f"c{i}"),
        )
    crashed, survivor = make_dispatcher(), make_dispatcher()

    token = secrets.token_hex(16)
    claimed = await crashed._claim(token)  # ...and the worker dies right after claiming
    assert len(claimed) == 3

    report = await survivor.run_once()
    assert report.claimed == 0 and report.sent == 0
    lease = dt.timedelta(seconds=survivor.settings.dispatch_lease_seconds)
    clock.advance(lease)  # the lease is still held at its last instant
    assert (await survivor.run_once()).claimed == 0
    assert smtp_sink.messages == []

    clock.advance(seconds=1)
    report = await survivor.run_once()
    assert report.claimed == 3 and report.sent == 3, report
    assert sorted(recipients(smtp_sink.messages)) == [f"crash{i}@example.com" for i in range(3)]

    # The first worker coming back with its stale claim sends nothing.
    late = DispatchReport()
    for enrollment_id in claimed:
        await crashed._process(enrollment_id, token, late)
    assert late.sent == 0 and late.skipped == 3
    assert (await survivor.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 3
    assert len(await messages(db)) == 3


async def test_slow_sender_past_its_lease_is_not_duplicated(
    client, account, clock, make_dispatcher, smtp_sink, db, backend
):
    _postgres_only(backend)
    await _immediate_campaign(client, account)
    await ingest(client, account, clock, event_now(clock))
    slow, other = make_dispatcher(gated=True), make_dispatcher()

    slow_tick = asyncio.create_task(slow.run_once())
    await asyncio.wait_for(slow.transport.entered.wait(), 10)  # recorded, now "sending"
    (row,) = await messages(db)
    assert row.status == "sending" and row.data_started_at is None

    # Its claim ran out before DATA: the next worker takes the send over and sends it.
    clock.advance(seconds=slow.settings.dispatch_lease_seconds + 1)
    report = await other.run_once()
    assert report.claimed == 1 and report.sent == 1, report
    assert len(smtp_sink.messages) == 1

    # The slow one wakes up: its DATA mark is refused (the attempt is not its own any more),
    # so it never begins DATA.
    slow.transport.release.set()
    slow_report = await asyncio.wait_for(slow_tick, 10)
    assert slow_report.sent == 0 and slow_report.skipped == 1, slow_report
    assert len(smtp_sink.messages) == 1
    (row,) = await messages(db)
    assert row.status == "sent" and row.attempts == 2
    enr = await enrollment(db)
    assert enr.next_step == 2 and enr.state == "active" and enr.lease_token is None
    assert (await other.run_once()).claimed == 0
    clock.advance(days=1)
    assert (await other.run_once()).sent == 1
    assert [m.step for m in await messages(db)] == [1, 2]
    assert len(smtp_sink.messages) == 2


async def test_worker_dying_before_data_is_sent_again_at_lease_expiry(
    client, account, clock, make_dispatcher, smtp_sink, db, backend
):
    _postgres_only(backend)
    await _immediate_campaign(client, account)
    await ingest(client, account, clock, event_now(clock))
    dying, other = make_dispatcher(gated=True), make_dispatcher()
    tick = asyncio.create_task(dying.run_once())
    await asyncio.wait_for(dying.transport.entered.wait(), 10)
    tick.cancel()  # the process dies before the message was handed to the server
    with pytest.raises(asyncio.CancelledError):
        await tick
    (row,) = await messages(db)
    assert row.status == "sending" and row.data_started_at is None

    # Its claim holds until the lease ends; then the message is sent again, once.
    lease = dt.timedelta(seconds=other.settings.dispatch_lease_seconds)
    clock.advance(lease - dt.timedelta(seconds=1))
    assert (await other.run_once()).claimed == 0
    clock.advance(seconds=2)
    report = await other.run_once()
    assert report.claimed == 1 and report.sent == 1, report
    assert (await other.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1
    (row,) = await messages(db)
    assert row.status == "sent" and row.attempts == 2
    assert str(smtp_sink.messages[0]["Message-ID"]) == row.message_id_header


async def test_worker_dying_mid_send_is_never_resent(
    client, account, clock, make_dispatcher, smtp_sink, db, backend
):
    _postgres_only(backend)
    await _immediate_campaign(client, account)
    await ingest(client, account, clock, event_now(clock))
    in_data = threading.Event()
    accept = smtp_sink.handler.handle_DATA

    async def slow_accept(server: object, session: object, envelope: object) -> str:
        reply = await accept(server, session, envelope)  # the server has it ...
        in_data.set()
        await asyncio.sleep(1)  # ... but the worker dies before the reply
        return reply

    smtp_sink.handler.handle_DATA = slow_accept  # type: ignore[method-assign]
    dying, other = make_dispatcher(), make_dispatcher()
    tick = asyncio.create_task(dying.run_once())
    assert await asyncio.to_thread(in_data.wait, 10)
    tick.cancel()  # the process dies while the SMTP server may or may not have the message
    with pytest.raises(asyncio.CancelledError):
        await tick
    died_at = clock.now()
    (row,) = await messages(db)
    assert row.status == "sending" and row.data_started_at == died_at

    # At lease expiry (not later): "unknown", never sent again, and the sequence continues.
    lease = dt.timedelta(seconds=other.settings.dispatch_lease_seconds)
    clock.advance(lease - dt.timedelta(seconds=1))
    assert (await other.run_once()).claimed == 0
    clock.advance(seconds=2)
    report = await other.run_once()
    assert report.claimed == 1 and report.sent == 0, report
    assert (await other.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1  # at most once: step 1 is not sent again
    (row,) = await messages(db)
    assert row.status == "unknown" and row.sent_at == died_at
    enr = await enrollment(db)
    assert enr.next_step == 2 and enr.next_due_at == died_at + dt.timedelta(days=1)
    clock.set(died_at + dt.timedelta(days=1))
    assert (await other.run_once()).sent == 1
    assert [(m.step, m.status) for m in await messages(db)] == [(1, "unknown"), (2, "sent")]


async def test_many_workers_racing_for_one_enrollment_send_one_email(
    client, account, clock, make_dispatcher, smtp_sink, db
):
    await _immediate_campaign(client, account)
    await ingest(client, account, clock, event_now(clock))
    workers = [make_dispatcher() for _ in range(5)]
    reports = await asyncio.gather(*(w.run_once() for w in workers))
    assert sum(r.claimed for r in reports) == 1
    assert sum(r.sent for r in reports) == 1
    assert len(smtp_sink.messages) == 1
    assert len(await messages(db)) == 1


async def test_message_is_unique_per_enrollment_and_step(
    client, account, clock, dispatcher, smtp_sink, db
):
    await _immediate_campaign(client, account)
    await ingest(client, account, clock, event_now(clock))
    assert (await dispatcher.run_once()).sent == 1
    (row,) = await messages(db)
    now = clock.now()
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            session.add(
                Message(
                    id=new_id("msg"),
                    account_id=row.account_id,
                    enrollment_id=row.enrollment_id,
                    lead_id=row.lead_id,
                    campaign_id=row.campaign_id,
                    variant_id=row.variant_id,
                    step=row.step,
                    status="sending",
                    to_email=row.to_email,
                    subject="",
                    message_id_header="",
                    attempts=1,
                    created_at=now,
                    updated_at=now,
                )
            )
    assert len(await messages(db)) == 1


async def test_purchase_while_sending_wins(client, account, clock, make_dispatcher, smtp_sink, db):
    await _immediate_campaign(client, account)
    await ingest(client, account, clock, event_now(clock))
    sender = make_dispatcher(gated=True)
    tick = asyncio.create_task(sender.run_once())
    await asyncio.wait_for(sender.transport.entered.wait(), 10)
    clock.advance(seconds=30)
    bought = await purchase(client, account, clock, email="jane@example.com", amount="59.00")
    assert len(bought) == 1
    sender.transport.release.set()
    assert (await asyncio.wait_for(tick, 10)).sent == 1  # it was already on its way
    enr = await enrollment(db)
    assert enr.state == "stopped" and enr.stop_reason == "converted" and enr.next_step == 1
    clock.advance(days=2)
    assert (await sender.run_once()).claimed == 0
    assert len(smtp_sink.messages) == 1


async def test_frequency_cap_holds_across_workers(
    client, account, clock, make_dispatcher, smtp_sink, db, backend
):
    _postgres_only(backend)
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S", "trial": "PT0S"})
    await create_campaign(client, account, steps=IMMEDIATE, status="active")
    trial_steps = [{"delay": "PT0S", "template": "trial/1"}]
    await create_campaign(
        client, account, name="Trial nurture", source="trial", steps=trial_steps, status="active"
    )
    for i in range(5):
        email = f"both{i}@example.com"
        await ingest(client, account, clock, event_now(clock, email=email, reference=f"chk_{i}"))
        await ingest(
            client,
            account,
            clock,
            event_now(clock, email=email, reference=f"tr_{i}", type="trial.started"),
        )
    workers = [make_dispatcher(dispatch_batch_size=3) for _ in range(3)]
    await asyncio.gather(*(_drain(w) for w in workers))
    counts = Counter(recipients(smtp_sink.messages))
    assert counts == {f"both{i}@example.com": 1 for i in range(5)}
    clock.advance(hours=12)
    await asyncio.gather(*(_drain(w) for w in workers))
    counts = Counter(recipients(smtp_sink.messages))
    assert counts == {f"both{i}@example.com": 2 for i in range(5)}
