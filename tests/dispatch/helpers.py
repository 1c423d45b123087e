"""Helpers for the dispatch tests alone: real HTTP (ASGI), real DB, real SMTP sink (the
shared ones are in tests/support/)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Conversion
from leadflow.models.tracking import Visit
from tests.support.api import BASE_URL
from tests.support.events import lead_event

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


def event_now(
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
    """A lead event happening now (or at ``occurred_at``), recovering at a per-reference URL
    (with a query to keep); a None ``language``, ``timezone`` or ``first_name`` is left out."""
    return lead_event(
        type=type,
        reference=reference,
        email=email,
        occurred_at=occurred_at or clock.now(),
        customer={"first_name": first_name, "language": language, "timezone": timezone},
        recovery_url=f"https://shop.example.com/recover/{reference}?step=pay&x=1",
        **overrides,
    )


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

    async def send(self, message: EmailMessage, *, before_data: Any = None) -> None:
        self.entered.set()
        await self.release.wait()
        await self.inner.send(message, before_data=before_data)

    async def close(self) -> None:
        await self.inner.close()
