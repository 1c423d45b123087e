"""Results and A/B tests: leads with their own address and reference, captured now and
spread over a campaign's variants; the tracked links in the emails they receive.

Leads are captured and bought through signed webhooks (``tests.support.events``); follow-ups
go out through the real dispatcher; clicks go through the ``/c/`` links found in the emails.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models import Enrollment, Variant
from tests.support.api import BASE_URL, auth, get_json, put_settings
from tests.support.campaigns import create_campaign
from tests.support.events import Lead, ingest

ONE_STEP: list[dict[str, Any]] = [{"delay": "PT0S", "template": "abandoned_checkout/1"}]
TWO_STEPS: list[dict[str, Any]] = [
    {"delay": "PT0S", "template": "abandoned_checkout/1"},
    {"delay": "PT1H", "template": "abandoned_checkout/2"},
]


async def no_min_delays(client: httpx.AsyncClient, account: dict[str, Any], **more: Any) -> None:
    await put_settings(
        client,
        account,
        min_delays={"abandoned_checkout": "PT0S", "unfinished_order": "PT0S"},
        **more,
    )


async def create_ab_campaign(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    ab_test: dict[str, Any] | None,
    *,
    steps: list[dict[str, Any]] | None = None,
    name: str = "Cart recovery A/B",
) -> tuple[dict[str, Any], dict[str, str]]:
    """An active campaign with variants A (created first) and B, weights 1:1; returns it and
    ``{"A": id, "B": id}``."""
    steps = steps or ONE_STEP
    campaign = await create_campaign(
        client,
        account,
        name=name,
        status="active",
        variants=[
            {"name": "A", "weight": 1, "steps": steps},
            {"name": "B", "weight": 1, "steps": steps},
        ],
        **({} if ab_test is None else {"ab_test": ab_test}),
    )
    ids = {v["name"]: v["id"] for v in campaign["variants"]}
    assert set(ids) == {"A", "B"}
    return campaign, ids


_counter = 0


def _next_reference() -> str:
    global _counter
    _counter += 1
    return f"chk_{_counter:05d}"


async def new_lead(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    *,
    reference: str | None = None,
    language: str = "de",
) -> Lead:
    """An abandoned checkout happening now, with its own address and reference."""
    reference = reference or _next_reference()
    email = f"{reference}@example.com"
    result = await ingest(
        client,
        account,
        clock,
        reference=reference,
        email=email,
        occurred_at=clock.now(),
        customer={"language": language},
        recovery_url=f"https://shop.example.com/recover/{reference}",
    )
    return Lead(id=result["lead_id"], reference=reference, email=email)


async def suppress(client: httpx.AsyncClient, account: dict[str, Any], lead: Lead) -> None:
    response = await client.post(
        "/v1/suppressions", json={"email": lead.email}, headers=auth(account)
    )
    assert response.status_code == 201, response.text


async def variant_of(db: Database, lead_id: str) -> str | None:
    async with db.session() as session:
        return (
            await session.execute(
                select(Enrollment.variant_id).where(Enrollment.lead_id == lead_id)
            )
        ).scalar_one_or_none()


async def variants_of(db: Database, campaign_id: str) -> list[Variant]:
    """The campaign's variants, oldest first (the order the split and the tie rules use)."""
    async with db.session() as session:
        rows = await session.execute(
            select(Variant)
            .where(Variant.campaign_id == campaign_id)
            .order_by(Variant.created_at, Variant.id)
        )
        return list(rows.scalars())


async def leads_per_variant(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    db: Database,
    variant_ids: dict[str, str],
    wanted: dict[str, int],
    *,
    max_leads: int = 80,
) -> dict[str, list[Lead]]:
    """Capture leads until each variant has exactly ``wanted[name]`` of them. The split is a
    hash of the (random) lead id, so leads beyond the wanted number are suppressed before any
    follow-up goes out: they are enrolled, but never targeted."""
    by_name = {vid: name for name, vid in variant_ids.items()}
    got: dict[str, list[Lead]] = {name: [] for name in variant_ids}
    for _ in range(max_leads):
        if all(len(got[n]) >= wanted.get(n, 0) for n in got):
            return got
        lead = await new_lead(client, account, clock)
        variant_id = await variant_of(db, lead.id)
        assert variant_id in by_name, (lead, variant_id)
        name = by_name[variant_id]
        if len(got[name]) < wanted.get(name, 0):
            got[name].append(lead)
        else:
            await suppress(client, account, lead)
    raise AssertionError(f"could not fill {wanted} within {max_leads} leads")


_LINK = re.compile(rf"{re.escape(BASE_URL)}/c/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def click_path(messages: list[EmailMessage], lead: Lead, index: int = 0) -> str:
    """The path of the tracked checkout link in the ``index``-th email the lead received."""
    received = [m for m in messages if str(m["To"]) == lead.email]
    assert len(received) > index, (lead, [m["To"] for m in messages])
    part = received[index].get_body(("plain",))
    assert part is not None
    found = _LINK.findall(str(part.get_content()))
    assert found, part
    return found[0][len(BASE_URL) :]


async def ab_result(
    client: httpx.AsyncClient, account: dict[str, Any], campaign_id: str
) -> dict[str, Any]:
    return await get_json(client, account, f"/v1/campaigns/{campaign_id}/ab-test")
