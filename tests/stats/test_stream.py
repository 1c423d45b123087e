"""`GET /v1/stats/stream` over a real socket: httpx's ASGITransport buffers whole responses,
so the app runs under uvicorn on 127.0.0.1 here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from leadflow.app import create_app
from tests.support.api import assert_problem, auth, get_json
from tests.support.campaigns import create_campaign
from tests.support.events import purchase
from tests.support.results import ONE_STEP, TWO_STEPS, new_lead, no_min_delays
from tests.support.servers import serve_app


@pytest.fixture
async def live_url(settings, clock, db) -> AsyncIterator[str]:
    fast = settings.model_copy(
        update={"stats_stream_interval_seconds": 0.05, "stats_stream_heartbeat_seconds": 0.2}
    )
    app = create_app(fast, clock=clock, db=db, auto_migrate=False)
    async with serve_app(app) as url:
        yield url


class EventReader:
    """Server-sent events, one block (up to a blank line) at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self) -> dict[str, Any]:
        block: list[str] = []
        async for line in self.lines:
            if line == "":
                if block:
                    break
                continue
            block.append(line)
        else:
            raise AssertionError(f"stream ended; partial block {block!r}")
        event: dict[str, Any] = {"comments": [], "event": None, "data": None, "retry": None}
        for line in block:
            if line.startswith(":"):
                event["comments"].append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                event[name] = value.removeprefix(" ")
        return event

    async def next_stats(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The next `event: stats` (its JSON data) and the blocks skipped before it."""
        skipped = []
        while True:
            event = await self.next()
            if event["event"] == "stats":
                return json.loads(event["data"]), skipped
            skipped.append(event)


async def test_stream_pushes_changes_and_heartbeats(
    live_url, client, account, other_account, clock, dispatcher, smtp_sink
):
    await no_min_delays(client, account)
    await create_campaign(client, account, name="Cart recovery", status="active", steps=TWO_STEPS)
    first_lead = await new_lead(client, account, clock)
    second_lead = await new_lead(client, account, clock)
    assert (await dispatcher.run_once()).sent == 2
    clock.advance(minutes=5)
    await purchase(client, account, clock, first_lead, amount="49.00", currency="EUR")
    overall = (await get_json(client, account, "/v1/stats"))["overall"]
    assert overall["followups_sent"] == 2

    async with (
        asyncio.timeout(15),
        httpx.AsyncClient(base_url=live_url, timeout=5) as http,
        http.stream("GET", "/v1/stats/stream", headers=auth(account)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        reader = EventReader(response)
        assert (await reader.next())["retry"] == "5000"

        # At once: the overall figures, the same as GET /v1/stats gives.
        data, _ = await reader.next_stats()
        assert data == overall
        assert data["value"] == {"EUR": "49.00"} and data["converted_leads"] == 1

        # Nothing changes: a heartbeat comment, no repeated figures.
        event = await reader.next()
        assert event["event"] is None and event["comments"] == ["heartbeat"], event

        # A follow-up goes out (step 2 for the lead that did not buy): new figures.
        clock.advance(hours=2)
        assert (await dispatcher.run_once()).sent == 1
        assert smtp_sink.messages[-1]["To"] == second_lead.email
        data, skipped = await reader.next_stats()
        assert all(e["comments"] == ["heartbeat"] for e in skipped), skipped
        assert data["followups_sent"] == 3
        assert data["targeted_leads"] == 2 and data["converted_leads"] == 1
        assert data == (await get_json(client, account, "/v1/stats"))["overall"]

        # And quiet again: only heartbeats until the next change.
        event = await reader.next()
        assert event["comments"] == ["heartbeat"], event
        event = await reader.next()
        assert event["comments"] == ["heartbeat"], event

    # Another account's stream sees only its own (empty) figures.
    async with (
        asyncio.timeout(10),
        httpx.AsyncClient(base_url=live_url, timeout=5) as http,
        http.stream("GET", "/v1/stats/stream", headers=auth(other_account)) as response,
    ):
        assert response.status_code == 200
        data, _ = await EventReader(response).next_stats()
        assert data["followups_sent"] == 0 and data["value"] == {}


async def test_stream_for_one_campaign(
    live_url, client, account, other_account, clock, dispatcher, smtp_sink
):
    await no_min_delays(client, account)
    de = await create_campaign(client, account, name="DE", status="active", steps=TWO_STEPS)
    await create_campaign(
        client,
        account,
        name="EN",
        status="active",
        languages=["en"],
        variants=[{"name": "A", "steps": ONE_STEP}],
    )
    await new_lead(client, account, clock)
    await new_lead(client, account, clock, language="en")
    assert (await dispatcher.run_once()).sent == 2

    async with asyncio.timeout(10), httpx.AsyncClient(base_url=live_url, timeout=5) as http:
        params = {"campaign_id": de["id"]}
        async with http.stream(
            "GET", "/v1/stats/stream", params=params, headers=auth(account)
        ) as response:
            assert response.status_code == 200
            data, _ = await EventReader(response).next_stats()
        assert data["followups_sent"] == 1 and data["targeted_leads"] == 1
        # Another account's campaign is not found, as everywhere else.
        async with http.stream(
            "GET", "/v1/stats/stream", params=params, headers=auth(other_account)
        ) as response:
            assert response.status_code == 404  # not an (endless) stream of zeros
            await response.aread()
            assert_problem(response, 404)


async def test_stream_refuses_bad_requests(live_url, account):
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=live_url, timeout=5) as http:
        response = await http.get("/v1/stats/stream")
        assert response.status_code == 401
        response = await http.get(
            "/v1/stats/stream", params={"from": "2026-01-15T12:00:00"}, headers=auth(account)
        )
        assert_problem(response, 422, field="from")
