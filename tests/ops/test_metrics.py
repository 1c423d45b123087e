"""``/metrics``: each metric moves when its event happens (real ingestion, a real SMTP server,
a real notification receiver), the token guarding it, and the port of its own."""

from __future__ import annotations

import datetime as dt

import httpx
from pydantic import SecretStr

from leadflow.abtest.service import evaluate_running
from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.mail import SmtpTransport
from leadflow.kit.metrics import serve_metrics
from leadflow.lifecycle.dispatcher import Dispatcher
from leadflow.notifications.delivery import Notifier
from tests.notifications.helpers import add_endpoint
from tests.notifications.receiver import Receiver
from tests.ops.helpers import METRICS_TOKEN, Scrape, moved, scrape
from tests.support.api import app_client, auth
from tests.support.campaigns import create_campaign, step
from tests.support.events import event_body, post_event
from tests.support.results import create_ab_campaign, no_min_delays
from tests.support.servers import free_port

EVENTS = "leadflow_events_ingested_total"
FOLLOWUPS = "leadflow_followups_total"


async def test_metrics_need_the_token(client, settings, db, clock):
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    good = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert good.status_code == 200
    assert "leadflow_events_ingested_total" in good.text or "# HELP leadflow_events" in good.text
    # Not part of the API's contract.
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]
    # Without a token, there is nothing there.
    untokened = settings.model_copy(update={"metrics_token": None})
    async with app_client(create_app(untokened, clock=clock, db=db, auto_migrate=False)) as c:
        response = await c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 404


async def test_ingested_events_by_result(client, account, clock):
    before = await scrape(client)
    body = event_body(occurred_at=clock.now().isoformat())
    first = await post_event(client, account, body, clock=clock, msg_id="msg_metrics_1")
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    again = await post_event(client, account, body, clock=clock, msg_id="msg_metrics_1")
    assert again.json()["duplicate"] is True
    forged = await client.post(
        f"/v1/webhooks/{account['id']}/events",
        content=b"{}",
        headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 401
    invalid = await post_event(client, account, {**body, "type": "no.such.type"}, clock=clock)
    assert invalid.status_code == 422, invalid.text
    bad_item = {**body, "id": "item-1", "customer": {"email": "not an address"}}
    batch = await post_event(
        client, account, {"events": [bad_item]}, clock=clock, path="events/batch"
    )
    assert batch.status_code == 200 and batch.json()["invalid"] == 1, batch.text
    after = await scrape(client)
    labels = {"source": "generic", "type": "checkout.abandoned"}
    assert moved(before, after, EVENTS, **labels, result="accepted") == 1
    assert moved(before, after, EVENTS, **labels, result="duplicate") == 1
    rejected = {"source": "generic", "type": "unknown", "result": "rejected"}
    assert moved(before, after, EVENTS, **rejected) == 1
    assert moved(before, after, EVENTS, source="generic", type="unknown", result="invalid") == 1
    assert moved(before, after, EVENTS, **labels, result="invalid") == 1
    # A new lead: it entered "open".
    changes = "leadflow_lead_status_changes_total"
    assert moved(before, after, changes, from_status="none", to_status="open") == 1


async def test_followups_by_outcome_and_step(client, account, clock, db, mail_settings, smtp_sink):
    await create_campaign(client, account, status="active", steps=[step("PT2H")])
    for reference in ("chk_deferred", "chk_failed"):
        body = event_body(occurred_at=clock.now().isoformat(), reference=reference)
        body["customer"]["email"] = f"{reference}@example.com"
        assert (await post_event(client, account, body, clock=clock)).status_code == 200
    transport = SmtpTransport(smtp_sink.url, pool_size=1, timeout=5)
    settings = mail_settings.model_copy(update={"dispatch_batch_size": 1})
    dispatcher = Dispatcher(settings, db, clock, transport)
    try:
        before = await scrape(client)
        clock.advance(dt.timedelta(hours=3))  # due an hour ago
        smtp_sink.handler.reply = "451 4.3.0 try later"
        report = await dispatcher.run_once()
        assert (report.claimed, report.retried) == (1, 1), report
        middle = await scrape(client)
        assert moved(before, middle, FOLLOWUPS, outcome="deferred", step="1") == 1
        # The claim: one enrollment, which was due an hour before.
        assert middle.value("leadflow_dispatch_lag_seconds") == 3600
        batches = "leadflow_claim_batch_size_count"
        assert moved(before, middle, batches, queue="dispatch") == 1
        assert moved(before, middle, "leadflow_claim_batch_size_sum", queue="dispatch") == 1

        smtp_sink.handler.reply = "550 5.1.1 no such user"
        report = await dispatcher.run_once()  # the other one (the first waits for its retry)
        assert report.failed == 1, report
        smtp_sink.handler.reply = None
        clock.advance(dt.timedelta(hours=1))
        report = await dispatcher.run_once()
        assert report.sent == 1, report
        assert len(smtp_sink.messages) == 1
        report = await dispatcher.run_once()
        assert report.claimed == 0
        after = await scrape(client)
    finally:
        await transport.close()
    assert moved(before, after, FOLLOWUPS, outcome="failed", step="1") == 1
    assert moved(before, after, FOLLOWUPS, outcome="sent", step="1") == 1
    assert moved(before, after, FOLLOWUPS, outcome="sent", step="2") == 0
    assert after.value("leadflow_dispatch_lag_seconds") == 0  # nothing due any more


async def test_notification_deliveries(client, account, clock, db, settings):
    receiver = Receiver()
    await receiver.start()
    notifier = Notifier(settings, db, clock)
    try:
        await add_endpoint(client, account, receiver, event_types=["lead.captured"])
        receiver.then(500)
        body = event_body(occurred_at=clock.now().isoformat())
        assert (await post_event(client, account, body, clock=clock)).status_code == 200
        before = await scrape(client)
        clock.advance(dt.timedelta(minutes=10))
        report = await notifier.run_once()
        assert (report.claimed, report.retried) == (1, 1), report
        middle = await scrape(client)
        # Claimed at 10 minutes old: the oldest pending one.
        assert middle.value("leadflow_iln_oldest_pending_seconds") == 600
        assert moved(before, middle, "leadflow_iln_deliveries_total", outcome="retried") == 1
        clock.advance(dt.timedelta(minutes=1))
        report = await notifier.run_once()
        assert report.delivered == 1, report
        after = await scrape(client)
        assert moved(before, after, "leadflow_iln_deliveries_total", outcome="delivered") == 1
        assert moved(before, after, "leadflow_claim_batch_size_count", queue="iln") == 2
        await notifier.run_once()
        assert (await scrape(client)).value("leadflow_iln_oldest_pending_seconds") == 0
    finally:
        await notifier.aclose()
        await receiver.stop()


async def test_ab_decisions(client, account, clock, db):
    decisions = "leadflow_ab_decisions_total"
    await no_min_delays(client, account)
    campaign, ids = await create_ab_campaign(client, account, None)
    before = await scrape(client)
    response = await client.post(
        f"/v1/campaigns/{campaign['id']}/ab-test/decide",
        json={"variant_id": ids["B"]},
        headers=auth(account),
    )
    assert response.status_code == 200, response.text
    middle = await scrape(client)
    assert moved(before, middle, decisions, outcome="decided", by="merchant") == 1

    ends = clock.now() + dt.timedelta(hours=1)
    await create_ab_campaign(
        client,
        account,
        {"criterion": "time_range", "ends_at": ends.isoformat()},
        name="Timed A/B",
    )
    clock.advance(dt.timedelta(hours=2))
    assert await evaluate_running(db, clock) == 1
    after = await scrape(client)
    by_worker = sum(
        moved(middle, after, decisions, outcome=outcome, by="worker")
        for outcome in ("decided", "inconclusive")
    )
    assert by_worker == 1
    assert moved(middle, after, decisions, outcome="decided", by="merchant") == 0


async def test_request_latency_by_route_template(client, account):
    campaign = await create_campaign(client, account)
    count = "leadflow_http_request_duration_seconds_count"
    route = {"method": "GET", "route": "/v1/campaigns/{campaign_id}", "status": "2xx"}
    before = await scrape(client)
    for _ in range(3):
        response = await client.get(f"/v1/campaigns/{campaign['id']}", headers=auth(account))
        assert response.status_code == 200
    assert (await client.get("/no/such/path")).status_code == 404
    after = await scrape(client)
    assert moved(before, after, count, **route) == 3
    unmatched = {"method": "GET", "route": "unmatched", "status": "4xx"}
    assert moved(before, after, count, **unmatched) == 1
    # The raw path (an id) never becomes a label.
    assert campaign["id"] not in after.text


async def test_pool_usage(client, db):
    before = await scrape(client)
    assert before.value("leadflow_db_pool_capacity") >= 1
    async with db.session() as session, db.session() as other:
        await session.connection()
        await other.connection()
        during = await scrape(client)
    # Two sessions holding connections (and the scrape holds none).
    assert moved(before, during, "leadflow_db_pool_checked_out") == 2
    after = await scrape(client)
    assert moved(before, after, "leadflow_db_pool_checked_out") == 0


async def test_metrics_on_a_port_of_their_own(db):
    port = free_port()
    stop = serve_metrics("127.0.0.1", port)
    assert stop is not None
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        families = Scrape(response.text).names()
        assert "leadflow_db_pool_capacity" in families
        # The port is taken now: a second server says so and serves nothing.
        assert serve_metrics("127.0.0.1", port) is None
    finally:
        stop()


def test_settings_names():
    settings = Settings(
        metrics_port=9100, metrics_token=SecretStr("t" * 24), log_format="json", log_level="debug"
    )
    assert (settings.metrics_host, settings.metrics_port, settings.log_level) == (
        "127.0.0.1",
        9100,
        "DEBUG",
    )
