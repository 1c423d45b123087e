"""Shared helpers for the ingestion API tests (fixtures come from tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models import Event, Lead, LeadEvent
from tests.conftest import ADMIN_TOKEN, auth

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "errors"}
SMALL_BODY_LIMIT = 2048
SMALL_BATCH_LIMIT = 3


@dataclass(frozen=True)
class Counts:
    events: int
    leads: int
    lead_events: int


async def counts(db: Database) -> Counts:
    """Rows written by ingestion, read straight from the database."""
    async with db.session() as s:
        events = await s.scalar(select(func.count()).select_from(Event))
        leads = await s.scalar(select(func.count()).select_from(Lead))
        links = await s.scalar(select(func.count()).select_from(LeadEvent))
    return Counts(events=events or 0, leads=leads or 0, lead_events=links or 0)


async def assert_nothing_written(db: Database) -> None:
    assert await counts(db) == Counts(0, 0, 0)


def assert_problem(
    response: httpx.Response, status: int, code: str, *, with_errors: bool = False
) -> dict[str, Any]:
    """An RFC 9457 problem document with leadflow's stable keys."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"/problems/{code.replace('_', '-')}"
    assert problem["title"]
    assert problem["detail"]
    if with_errors:
        assert set(problem) == PROBLEM_KEYS
        assert problem["errors"], problem
    return problem


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem["errors"]}


def at(clock: ManualClock, **delta: float) -> str:
    """An RFC 3339 UTC timestamp relative to the test clock."""
    when = clock.now() + dt.timedelta(**delta)
    return when.isoformat().replace("+00:00", "Z")


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def get_lead(client: httpx.AsyncClient, account: dict[str, Any], lead_id: str) -> Any:
    response = await client.get(f"/v1/leads/{lead_id}", headers=auth(account))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def small_client(db: Database, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a 2 KiB body limit and at most 3 events per batch."""
    settings = Settings(
        database_url=db.url,
        admin_token=ADMIN_TOKEN,
        base_url="http://testserver",
        max_body_bytes=SMALL_BODY_LIMIT,
        max_batch_events=SMALL_BATCH_LIMIT,
    )
    app = create_app(settings, clock=clock, db=db, auto_migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
