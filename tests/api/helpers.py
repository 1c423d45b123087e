"""Helpers shared by the merchant API tests (fixtures live in tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import event_body, post_event

PROBLEM = "application/problem+json"


def assert_problem(
    response: httpx.Response, status: int, *, field: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem document with ``status``; ``field`` must be named in ``errors``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"]
    assert body["code"]
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        fields = [e["field"] for e in body.get("errors") or []]
        assert field in fields, f"{field!r} not named in {fields!r}: {body}"
    return body


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A moment in January 2026, before the ManualClock's start (2026-01-15T12:00Z)."""
    return dt.datetime(2026, 1, day, hour, minute, tzinfo=dt.UTC)


async def send(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: Any,
    *,
    type: str = "checkout.abandoned",
    reference: str | None = "chk_1",
    email: str = "jane@example.com",
    occurred_at: dt.datetime | str = "2026-01-15T11:00:00Z",
    customer: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Post one signed event through real ingestion; return the ingestion result."""
    when = occurred_at if isinstance(occurred_at, str) else iso(occurred_at)
    body = event_body(type=type, reference=reference, occurred_at=when, **overrides)
    if reference is None:
        del body["reference"]
    body["customer"] = {**body["customer"], "email": email, **(customer or {})}
    response = await post_event(client, account, body, clock=clock)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["duplicate"] is False
    return result


async def capture(client: httpx.AsyncClient, account: dict[str, Any], clock: Any, **kw: Any) -> str:
    """Capture (or update) a lead; return its id."""
    result = await send(client, account, clock, **kw)
    assert result["lead_id"], result
    return str(result["lead_id"])


async def purchase(
    client: httpx.AsyncClient, account: dict[str, Any], clock: Any, **kw: Any
) -> list[str]:
    """Post an ``order.completed``; return the ids of the leads it converted."""
    result = await send(client, account, clock, type="order.completed", **kw)
    return list(result["converted_lead_ids"])


@asynccontextmanager
async def app_client(
    app: FastAPI, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
