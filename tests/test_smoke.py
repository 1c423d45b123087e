from __future__ import annotations

from tests.support.api import auth
from tests.support.events import event_body, post_event


async def test_event_becomes_lead(client, account, clock):
    response = await post_event(client, account, event_body(), clock=clock)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["duplicate"] is False
    lead = (await client.get(f"/v1/leads/{result['lead_id']}", headers=auth(account))).json()
    assert lead["customer"]["email"] == "jane@example.com"
    assert lead["amount"] == "49.00"
    assert lead["events"][0]["role"] == "capture"
