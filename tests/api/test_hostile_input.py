"""Hostile input answers a 4xx naming what is wrong, never a 500 (issue 11's table)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import assert_problem, auth
from tests.support.events import event_body, post_event


async def _count(client: httpx.AsyncClient, account: dict[str, Any], path: str) -> int:
    response = await client.get(path, headers=auth(account))
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def test_a_webhook_id_longer_than_storable_is_refused(client, account, clock):
    response = await post_event(client, account, event_body(), msg_id="m" * 256, clock=clock)
    assert_problem(response, 422, field="webhook-id")
    assert await _count(client, account, "/v1/leads") == 0
    ok = await post_event(client, account, event_body(), msg_id="m" * 255, clock=clock)
    assert ok.status_code == 200, ok.text


async def test_iln_urls_with_impossible_host_names_are_refused(client, account):
    for host in ("a" * 64 + ".example.com", "shop..example.com"):
        response = await client.post(
            "/v1/iln/endpoints",
            headers=auth(account),
            json={"url": f"https://{host}/hook", "event_types": []},
        )
        assert_problem(response, 422, field="url")
    assert await _count(client, account, "/v1/iln/endpoints") == 0


async def test_nul_in_query_parameters_is_refused_by_name(client, account):
    for path, name in (
        ("/v1/iln/deliveries?event_type=a%00b", "event_type"),
        ("/v1/suppressions?email=a%00b@example.com", "email"),
        ("/v1/stats?campaign_id=cmp%00x", "campaign_id"),
        ("/v1/leads?email=x%00", "email"),
    ):
        response = await client.get(path, headers=auth(account))
        assert_problem(response, 422, field=name)


async def test_nul_in_json_fields_is_refused_by_name(client, account):
    body = {"name": "Cart\u0000 recovery", "source": "abandoned_checkout"}
    response = await client.post("/v1/campaigns", headers=auth(account), json=body)
    assert_problem(response, 422, field="name")
    assert await _count(client, account, "/v1/campaigns") == 0


async def test_line_breaks_in_values_that_become_headers_are_refused(client, account):
    before = (await client.get("/v1/settings", headers=auth(account))).json()
    for field, value in (
        ("sender_name", "Acme\r\nBcc: victim@example.com"),
        ("sender_name", "Acme\nShop"),
    ):
        response = await client.put(
            "/v1/settings", headers=auth(account), json={**before, field: value}
        )
        assert_problem(response, 422, field=field)
    after = (await client.get("/v1/settings", headers=auth(account))).json()
    assert after == before


async def test_nul_in_json_is_refused_whatever_the_framing(client, account):
    body = b'{"name": "Cart\\u0000 recovery", "source": "abandoned_checkout"}'

    async def chunks():
        yield body[:20]
        yield body[20:]

    without_length = await client.post(
        "/v1/campaigns",
        headers={**auth(account), "Content-Type": "application/json"},
        content=chunks(),  # chunked: no Content-Length
    )
    assert_problem(without_length, 422, field="name")
    without_type = await client.post("/v1/campaigns", headers=auth(account), content=body)
    assert without_type.status_code in (415, 422), without_type.text
    assert await _count(client, account, "/v1/campaigns") == 0


async def test_an_oversized_api_body_is_refused_before_parsing(client, account):
    body = b'{"name": "x", "description": "' + b"a" * (4 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/campaigns",
        headers={**auth(account), "Content-Type": "application/json"},
        content=body,
    )
    assert_problem(response, 413)
