"""Signed webhook events: moments, the default event, posting it, and captures and purchases.

``capture`` and ``purchase`` go through real ingestion (a signed ``POST`` to the account's
webhook) and check that it was accepted; ``lead_event`` builds the body they post.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from leadflow.kit.clock import ManualClock
from leadflow.kit.signing import sign
from tests.support.api import ok_json

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)  # the ManualClock's start
EVENT_TIME = "2026-01-15T11:00:00Z"  # when a captured event happened, unless told: before NOW


def iso(value: dt.datetime, offset_hours: int | None = None) -> str:
    """RFC 3339 in UTC with a ``Z``; with ``offset_hours``, in that UTC offset as Shopify
    writes it (``2026-01-15T07:00:00-05:00``, ``+00:00`` for 0)."""
    if offset_hours is None:
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    return value.astimezone(zone).isoformat()


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A moment in January 2026 (UTC); the ManualClock starts at ``at(15, 12)``."""
    return dt.datetime(2026, 1, day, hour, minute, tzinfo=dt.UTC)


def clock_iso(clock: ManualClock, **delta: float) -> str:
    """The test clock's now moved by ``delta`` (``timedelta`` arguments), in RFC 3339 UTC."""
    return iso(clock.now() + dt.timedelta(**delta))


def _rfc3339(value: dt.datetime | str) -> str:
    return value if isinstance(value, str) else iso(value)


def signed_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }


def event_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "checkout.abandoned",
        "occurred_at": "2026-01-15T11:00:00Z",
        "reference": "chk_1",
        "customer": {
            "email": "Jane@Example.com",
            "first_name": "Jane",
            "last_name": "Doe",
            "language": "de",
            "country": "DE",
            "timezone": "Europe/Berlin",
        },
        "products": [{"id": "sku-1", "name": "Pro plan", "quantity": 2, "unit_price": "24.50"}],
        "amount": "49.00",
        "currency": "EUR",
        "recovery_url": "https://shop.example.com/recover/chk_1",
        "attributes": {"utm_source": "newsletter"},
    }
    body.update(overrides)
    return body


async def post_event(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    body: dict[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    clock: ManualClock | None = None,
    path: str = "events",
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if timestamp is None and clock is not None:
        timestamp = int(clock.now().timestamp())
    headers = signed_headers(account["webhook_secret"], raw, msg_id=msg_id, timestamp=timestamp)
    return await client.post(f"/v1/webhooks/{account['id']}/{path}", content=raw, headers=headers)


async def post_batch(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    events: list[Any],
    clock: ManualClock | None = None,
    **kw: Any,
) -> httpx.Response:
    """``{"events": events}``, signed, to the batch endpoint."""
    return await post_event(
        client, account, {"events": events}, clock=clock, path="events/batch", **kw
    )


def lead_event(
    *,
    type: str = "checkout.abandoned",
    reference: str | None = "chk_1",
    email: str | None = None,
    occurred_at: dt.datetime | str = EVENT_TIME,
    customer: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """``event_body`` about one customer. ``email`` defaults to ``<reference>@example.com``;
    ``customer`` is laid over the default customer (a None value leaves that member out);
    ``fields`` replace other members (None is sent as null); ``reference=None`` leaves the
    reference out."""
    if email is None:
        assert reference is not None, "an event without a reference needs an email"
        email = f"{reference}@example.com"
    body = event_body(type=type, reference=reference, occurred_at=_rfc3339(occurred_at), **fields)
    if reference is None:
        del body["reference"]
    merged = {**body["customer"], "email": email, **(customer or {})}
    body["customer"] = {k: v for k, v in merged.items() if v is not None}
    return body


async def ingest(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    event: dict[str, Any] | None = None,
    *,
    msg_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Post one signed event, ``event`` or ``lead_event(**fields)``, through real ingestion;
    it must be accepted as new. Returns the ingestion result."""
    if event is None:
        event = lead_event(**fields)
    else:
        assert not fields, "pass an event or the fields to build one, not both"
    result = ok_json(await post_event(client, account, event, clock=clock, msg_id=msg_id))
    assert result["duplicate"] is False
    return result


async def capture(
    client: httpx.AsyncClient, account: dict[str, Any], clock: ManualClock, **fields: Any
) -> str:
    """Capture (or update) a lead with ``lead_event(**fields)``; return the lead's id."""
    result = await ingest(client, account, clock, **fields)
    assert result["lead_id"], result
    return str(result["lead_id"])


@dataclass
class Lead:
    id: str
    reference: str
    email: str


async def purchase(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    lead: Lead | None = None,
    *,
    reference: str = "chk_1",
    email: str | None = None,
    occurred_at: dt.datetime | str | None = None,
    amount: str = "49.00",
    currency: str = "EUR",
    bare: bool = True,
    **fields: Any,
) -> list[str]:
    """An ``order.completed`` by ``lead`` (or for ``reference`` from ``email``, by default
    ``<reference>@example.com``), now on the clock unless ``occurred_at``; returns the ids of
    the leads it converted.

    ``bare``: the order alone (no products, no recovery URL, only the address and first name
    of the customer); ``bare=False`` sends the whole ``lead_event`` as the order."""
    if lead is not None:
        reference, email = lead.reference, lead.email
    when = clock.now() if occurred_at is None else occurred_at
    if bare:
        body = event_body(
            type="order.completed",
            reference=reference,
            occurred_at=_rfc3339(when),
            customer={"email": email or f"{reference}@example.com", "first_name": "Jane"},
            amount=amount,
            currency=currency,
            products=[],
            **fields,
        )
        del body["recovery_url"]
    else:
        body = lead_event(
            type="order.completed",
            reference=reference,
            email=email,
            occurred_at=when,
            amount=amount,
            currency=currency,
            **fields,
        )
    result = await ingest(client, account, clock, body)
    return list(result["converted_lead_ids"])
