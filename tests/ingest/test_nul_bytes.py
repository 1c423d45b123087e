"""NUL bytes in the webhook path or id are refused cleanly (PostgreSQL cannot store them)."""

from __future__ import annotations

import json

from tests.support.events import event_body, signed_headers


async def test_nul_in_account_id_is_404(client, account):
    body = json.dumps(event_body()).encode()
    headers = signed_headers(account["webhook_secret"], body)
    response = await client.post("/v1/webhooks/acc%00x/events", content=body, headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_nul_in_webhook_id_is_401(client, account, clock):
    body = json.dumps(event_body()).encode()
    headers = signed_headers(
        account["webhook_secret"], body, msg_id="m\x00", timestamp=int(clock.now().timestamp())
    )
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events", content=body, headers=headers
    )
    assert response.status_code == 401
