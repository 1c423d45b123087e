"""Helpers shared by the campaign API tests (fixtures live in tests/conftest.py)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import func, select

from leadflow.kit.db import Database
from leadflow.models import Enrollment
from tests.conftest import auth, event_body, post_event

PROBLEM = "application/problem+json"
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)  # the ManualClock's start


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    field: str | None = None,
    code: str | None = None,
    message_contains: str | None = None,
) -> dict[str, Any]:
    """An RFC 9457 problem with ``status``; ``field`` must be named in ``errors`` and, when
    given, that error's message must contain ``message_contains``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        errors = body.get("errors") or []
        messages = [e["message"] for e in errors if e["field"] == field]
        assert messages, f"{field!r} not named in {[e['field'] for e in errors]!r}: {body}"
        if message_contains is not None:
            assert any(message_contains in m for m in messages), (field, messages)
    return body


def step(delay: str = "PT2H", template: str = "abandoned_checkout/1", **extra: Any) -> dict:
    return {"delay": delay, "template": template, **extra}


def custom_step(
    delay: str = "PT2H",
    subject: str = "Still thinking it over, {{ first_name }}?",
    html: str = "<p>Hi {{ first_name }}, your cart is waiting.</p>",
    text: str = "Hi {{ first_name }}, your cart is waiting.",
    **extra: Any,
) -> dict:
    return {"delay": delay, "subject": subject, "html": html, "text": text, **extra}


def variant(name: str = "A", steps: list[dict] | None = None, weight: int = 1) -> dict:
    return {"name": name, "weight": weight, "steps": steps if steps is not None else [step()]}


def campaign_body(name: str = "Cart recovery DE", **overrides: Any) -> dict[str, Any]:
    """A valid abandoned-checkout campaign with one single-step variant."""
    body: dict[str, Any] = {
        "name": name,
        "source": "abandoned_checkout",
        "variants": [variant()],
    }
    body.update(copy.deepcopy(overrides))
    return body


async def create_campaign(
    client: httpx.AsyncClient, account: dict[str, Any], **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/campaigns", json=campaign_body(**overrides), headers=auth(account)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def get_campaign(
    client: httpx.AsyncClient, account: dict[str, Any], campaign_id: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/campaigns/{campaign_id}", headers=auth(account))
    assert response.status_code == 200, response.text
    return response.json()


async def count(db: Database, model: type, **where: Any) -> int:
    async with db.session() as session:
        stmt = select(func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        return int(await session.scalar(stmt) or 0)


async def enrollment_of(db: Database, lead_id: str) -> Enrollment | None:
    async with db.session() as session:
        return (
            await session.execute(select(Enrollment).where(Enrollment.lead_id == lead_id))
        ).scalar_one_or_none()


async def capture(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: Any,
    *,
    reference: str,
    email: str | None = None,
    type: str = "checkout.abandoned",
    occurred_at: dt.datetime | str = "2026-01-15T11:00:00Z",
    products: list[dict[str, Any]] | None = None,
    **customer: Any,
) -> str:
    """Capture a lead through a signed webhook; return its id. ``customer`` overrides
    fields of the customer object (``language=None`` removes the language)."""
    body = event_body(
        type=type,
        reference=reference,
        occurred_at=occurred_at if isinstance(occurred_at, str) else iso(occurred_at),
    )
    body["customer"] = {
        **body["customer"],
        "email": email or f"{reference}@example.com",
        **customer,
    }
    body["customer"] = {k: v for k, v in body["customer"].items() if v is not None}
    if products is not None:
        body["products"] = products
    response = await post_event(client, account, body, clock=clock)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["lead_id"], result
    return str(result["lead_id"])


async def purchase(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: Any,
    *,
    reference: str,
    email: str | None = None,
    occurred_at: str = "2026-01-15T11:30:00Z",
) -> list[str]:
    """An ``order.completed`` for ``reference``; return the ids of the leads it converted."""
    body = event_body(type="order.completed", reference=reference, occurred_at=occurred_at)
    body["customer"] = {**body["customer"], "email": email or f"{reference}@example.com"}
    response = await post_event(client, account, body, clock=clock)
    assert response.status_code == 200, response.text
    return list(response.json()["converted_lead_ids"])
