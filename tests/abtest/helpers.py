"""Helpers for the A/B tests alone, on top of tests/support/results.py."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from sqlalchemy import select

from leadflow.kit.clock import ManualClock
from leadflow.kit.db import Database
from leadflow.models import AbTest, IlnDelivery
from tests.support.api import auth
from tests.support.events import Lead
from tests.support.results import new_lead, variant_of


def hashed_variant(lead_id: str, variants: list[tuple[str, int]]) -> str:
    """The documented split, written out independently: SHA-256 of the lead id over the
    variants' weights, in the variants' order (oldest first)."""
    point = int.from_bytes(hashlib.sha256(lead_id.encode()).digest()[:8], "big")
    point %= sum(weight for _, weight in variants)
    for variant_id, weight in variants:
        if point < weight:
            return variant_id
        point -= weight
    raise AssertionError("unreachable")


async def lead_hashed_to(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    clock: ManualClock,
    db: Database,
    ids: dict[str, str],
    name: str,
    *,
    max_leads: int = 40,
) -> tuple[Lead, str | None]:
    """Capture new leads until one whose 50/50 split between A and B would be ``name``;
    return it and the variant it was actually enrolled in."""
    split = [(ids["A"], 1), (ids["B"], 1)]
    for _ in range(max_leads):
        lead = await new_lead(client, account, clock)
        if hashed_variant(lead.id, split) == ids[name]:
            return lead, await variant_of(db, lead.id)
    raise AssertionError(f"no lead hashed to {name} in {max_leads} tries")


async def subscribe_decisions(client: httpx.AsyncClient, account: dict[str, Any]) -> str:
    """An ILN endpoint for `abtest.decided` (a public address: saving it needs no network;
    its deliveries simply stay pending here)."""
    response = await client.post(
        "/v1/iln/endpoints",
        json={"url": "https://93.184.216.34/hook", "event_types": ["abtest.decided"]},
        headers=auth(account),
    )
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    return endpoint_id


async def decided_deliveries(db: Database) -> list[IlnDelivery]:
    async with db.session() as session:
        rows = await session.execute(
            select(IlnDelivery).where(IlnDelivery.event_type == "abtest.decided")
        )
        return list(rows.scalars())


async def ab_row(db: Database, campaign_id: str) -> AbTest:
    async with db.session() as session:
        test = await session.get(AbTest, campaign_id)
        assert test is not None
        return test


async def decide(
    client: httpx.AsyncClient, account: dict[str, Any], campaign_id: str, variant_id: str
) -> httpx.Response:
    return await client.post(
        f"/v1/campaigns/{campaign_id}/ab-test/decide",
        json={"variant_id": variant_id},
        headers=auth(account),
    )
