"""Helpers for the dispatch integration tests: real HTTP (ASGI), real DB, real SMTP sink."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select

from leadflow.dispatch.models import Enrollment, Message
from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.leads.models import Conversion
from leadflow.tracking.models import Visit
from tests.conftest import auth, event_body, post_event, signed_headers

BASE_URL = "http://testserver"

CUSTOM_STEP_2 = {
    "delay": "P1D",
    "subject": "{{ first_name }}, your {{ amount }} cart is waiting",
    "html": (
        "<p>Hi {{ first_name }}, your cart of {{ amount }} is saved.</p>"
        '<p><a href="{{ recovery_url }}">Complete your order</a></p>'
    ),
    "text": (
        "Hi {{ first_name }}, your cart of {{ amount }} is saved.\n"
        "Complete your order: {{ recovery_url }}\n"
    ),
}

THREE_STEPS: list[dict[str, Any]] = [
    {"delay": "PT2H", "template": "abandoned_checkout/1"},
    CUSTOM_STEP_2,
    {"delay": "P1D", "template": "abandoned_checkout/3", "discount_code": "SAVE10"},
]


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def create_campaign(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    *,
    name: str = "Cart recovery DE",
    source: str = "abandoned_checkout",
    steps: Sequence[dict[str, Any]] | None = None,
    status: str = "active",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "source": source,
        "status": status,
        "variants": [{"name": "A", "steps": list(steps or THREE_STEPS)}],
        **extra,
    }
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def put_settings(
    client: httpx.AsyncClient, account: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    response = await client.put("/v1/settings", json=changes, headers=auth(account))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def patch_campaign(
    client: httpx.AsyncClient, account: dict[str, Any], campaign_id: str, **changes: Any
) -> dict[str, Any]:
    response = await client.patch(
        f"/v1/campaigns/{campaign_id}", json=changes, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def lead_event(
    clock: ManualClock,
    *,
    email: str = "jane@example.com",
    reference: str = "chk_1",
    type: str = "checkout.abandoned",
    language: str | None = "de",
    timezone: str | None = "Europe/Berlin",
    first_name: str | None = "Jane",
    occurred_at: dt.datetime | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A lead event happening now (or at ``occurred_at``), recovering at a per-reference URL."""
    customer: dict[str, Any] = {
        "email": email,
        "first_name": first_name,
        "last_name": "Doe",
        "country": "DE",
    }
    if language is not None:
        customer["language"] = language
    if timezone is not None:
        customer["timezone"] = timezone
    body = event_body(
        type=type,
        reference=reference,
        occurred_at=iso(occurred_at or clock.now()),
        customer=customer,
        recovery_url=f"https://shop.example.com/recover/{reference}?step=pay&x=1",
        **overrides,
    )
    return body


async def capture(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    *,
    msg_id: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Post one signed lead event through the real webhook endpoint; return the result."""
    response = await post_event(
        client, account, lead_event(clock, **kw), clock=clock, msg_id=msg_id
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def purchase(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    *,
    reference: str = "chk_1",
    email: str = "jane@example.com",
    amount: str = "59.00",
    currency: str = "EUR",
) -> dict[str, Any]:
    body = event_body(
        type="order.completed",
        reference=reference,
        occurred_at=iso(clock.now()),
        customer={"email": email, "first_name": "Jane"},
        amount=amount,
        currency=currency,
        products=[],
        recovery_url=None,
    )
    del body["recovery_url"]
    response = await post_event(client, account, body, clock=clock)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def post_batch(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    raw = json.dumps({"events": events}).encode()
    headers = signed_headers(account["webhook_secret"], raw, timestamp=int(clock.now().timestamp()))
    response = await client.post(
        f"/v1/webhooks/{account['id']}/events/batch", content=raw, headers=headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def all_rows(db: Database, model: Any, *where: Any) -> list[Any]:
    async with db.session() as session:
        stmt = select(model).where(*where) if where else select(model)
        return list((await session.execute(stmt)).scalars())


async def messages(db: Database, *where: Any) -> list[Message]:
    rows = await all_rows(db, Message, *where)
    return sorted(rows, key=lambda m: (m.created_at, m.step, m.id))


async def enrollments(db: Database, *where: Any) -> list[Enrollment]:
    return await all_rows(db, Enrollment, *where)


async def enrollment(db: Database) -> Enrollment:
    (row,) = await enrollments(db)
    return row


async def conversions(db: Database) -> list[Conversion]:
    return await all_rows(db, Conversion)


async def visits(db: Database) -> list[Visit]:
    return await all_rows(db, Visit)


def text_part(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None, msg
    return str(part.get_content())


def html_part(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None, msg
    return str(part.get_content())


def links(text: str, kind: str) -> list[str]:
    """Every ``http://testserver/<kind>/<token>`` URL in a text, in order."""
    return re.findall(rf"{re.escape(BASE_URL)}/{kind}/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", text)


def unsubscribe_link(msg: EmailMessage) -> str:
    header = str(msg["List-Unsubscribe"])
    assert header.startswith(f"<{BASE_URL}/u/") and header.endswith(">"), header
    return header[1:-1]


def path_of(url: str) -> str:
    assert url.startswith(BASE_URL), url
    return url[len(BASE_URL) :]


def recipients(msgs: Sequence[EmailMessage]) -> list[str]:
    return [str(m["To"]) for m in msgs]


def tamper(token: str) -> str:
    """Flip the last character of the signature part."""
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


class GatedTransport:
    """The real SMTP transport, held at the door until released: a slow or dying worker."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        self.entered.set()
        await self.release.wait()
        await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()
