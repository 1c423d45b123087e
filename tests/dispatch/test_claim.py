"""The claim: due work of running campaigns, oldest first, never paused work, however the
enrollment's source type is known (recorded on the row, or only on its lead)."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select, update

from leadflow.kit.mail import SmtpTransport
from leadflow.lifecycle.dispatcher import Dispatcher
from leadflow.models.enrollments import Enrollment
from leadflow.models.leads import Lead
from tests.dispatch.helpers import enrollments, event_now, recipients
from tests.support.api import auth, put_settings
from tests.support.campaigns import create_campaign, custom_step
from tests.support.events import ingest
from tests.support.servers import smtp_url

NOW_STEPS = [custom_step(delay="PT0S")]


async def _record_source_types(db, recorded: bool) -> None:
    """As the enrollment's writer leaves it: the lead's source type on the row, or null."""
    source = select(Lead.source_type).where(Lead.id == Enrollment.lead_id).scalar_subquery()
    async with db.session() as session:
        await session.execute(update(Enrollment).values(source_type=source if recorded else None))


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "from_lead"])
async def test_switched_off_lead_group_is_skipped_in_a_campaign_for_all_sources(
    client, account, clock, dispatcher, smtp_sink, db, recorded
):
    await put_settings(client, account, min_delays={"abandoned_checkout": "PT0S", "trial": "PT0S"})
    await create_campaign(client, account, source="all", steps=NOW_STEPS, status="active")
    await ingest(client, account, clock, event_now(clock, email="cart@example.com"))
    trial = event_now(clock, email="trial@example.com", reference="tr_1", type="trial.started")
    await ingest(client, account, clock, trial)
    assert len(await enrollments(db)) == 2
    await _record_source_types(db, recorded)
    response = await client.patch(
        "/v1/lead-groups/trial", json={"status": "inactive"}, headers=auth(account)
    )
    assert response.status_code == 200, response.text

    clock.advance(minutes=5)
    report = await dispatcher.run_once()
    assert report.claimed == 1 and report.sent == 1, report
    assert recipients(smtp_sink.messages) == ["cart@example.com"]
    assert (await dispatcher.run_once()).claimed == 0
    (held,) = [e for e in await enrollments(db) if e.next_step == 1]
    assert held.state == "active" and held.lease_token is None

    response = await client.patch(
        "/v1/lead-groups/trial", json={"status": "active"}, headers=auth(account)
    )
    assert response.status_code == 200
    assert (await dispatcher.run_once()).sent == 1
    assert recipients(smtp_sink.messages) == ["cart@example.com", "trial@example.com"]


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "from_lead"])
async def test_claims_the_oldest_due_first_across_campaigns_and_paused_ones_never(
    client, account, clock, mail_settings, smtp_sink, db, recorded
):
    minimum = {"abandoned_checkout": "PT0S", "trial": "PT0S", "renewal": "PT0S"}
    await put_settings(client, account, min_delays=minimum)
    await create_campaign(client, account, steps=NOW_STEPS, status="active")
    await create_campaign(
        client, account, name="Trials", source="trial", steps=NOW_STEPS, status="active"
    )
    paused = await create_campaign(
        client, account, name="Renewals", source="renewal", steps=NOW_STEPS, status="active"
    )
    # Due times a minute apart, alternating campaigns; the paused campaign's are the oldest.
    kinds = [
        ("renewal.due", "renewal"),
        ("renewal.due", "renewal"),
        ("checkout.abandoned", "cart"),
        ("trial.started", "trial"),
        ("checkout.abandoned", "cart"),
        ("trial.started", "trial"),
    ]
    for i, (type_, name) in enumerate(kinds):
        event = event_now(clock, email=f"{name}{i}@example.com", reference=f"r{i}", type=type_)
        await ingest(client, account, clock, event)
        clock.advance(minutes=1)
    await _record_source_types(db, recorded)
    response = await client.patch(
        f"/v1/campaigns/{paused['id']}", json={"status": "inactive"}, headers=auth(account)
    )
    assert response.status_code == 200, response.text

    settings = mail_settings.model_copy(update={"dispatch_batch_size": 3})
    transport = SmtpTransport(smtp_url(settings), pool_size=2, timeout=5)
    worker = Dispatcher(settings, db, clock, transport)
    try:
        claimed = await worker._claim(secrets.token_hex(16))
        by_id = {e.id: e for e in await enrollments(db)}
        assert len(claimed) == 3
        due_order = sorted(
            (e for e in by_id.values() if e.campaign_id != paused["id"]),
            key=lambda e: e.next_due_at,
        )
        assert sorted(claimed) == sorted(e.id for e in due_order[:3])
        assert all(by_id[i].lease_token is not None for i in claimed)
        # The next worker gets the one left; the paused campaign's stay where they are.
        rest = await Dispatcher(settings, db, clock, transport)._claim(secrets.token_hex(16))
        assert rest == [due_order[3].id]
        held = [e for e in await enrollments(db) if e.campaign_id == paused["id"]]
        assert len(held) == 2 and all(e.lease_token is None for e in held)
    finally:
        await transport.close()
