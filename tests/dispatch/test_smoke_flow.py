from __future__ import annotations

import datetime as dt

from tests.support.api import auth
from tests.support.events import event_body, post_event


async def test_one_followup(client, account, clock, dispatcher, smtp_sink):
    campaign = {
        "name": "Cart recovery",
        "source": "abandoned_checkout",
        "status": "active",
        "variants": [
            {"name": "A", "steps": [{"delay": "PT2H", "template": "abandoned_checkout/1"}]}
        ],
    }
    r = await client.post("/v1/campaigns", json=campaign, headers=auth(account))
    assert r.status_code == 201, r.text
    body = event_body(occurred_at=clock.now().isoformat())
    r = await post_event(client, account, body, clock=clock)
    assert r.status_code == 200, r.text
    report = await dispatcher.run_once()
    assert report.claimed == 0
    clock.advance(dt.timedelta(hours=2))
    report = await dispatcher.run_once()
    assert report.sent == 1, report
    assert len(smtp_sink.messages) == 1
    msg = smtp_sink.messages[0]
    assert msg["To"] == "jane@example.com"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    report = await dispatcher.run_once()
    assert report.claimed == 0
