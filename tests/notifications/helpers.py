"""Helpers for the notification tests alone (the shared ones are in tests/support/)."""

from __future__ import annotations

from typing import Any

import httpx

from leadflow.kit.db import Database
from leadflow.models.notifications import IlnDelivery
from tests.notifications.receiver import Receiver
from tests.support.api import auth
from tests.support.database import count


async def add_endpoint(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    receiver: Receiver | None = None,
    *,
    url: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Create an endpoint (pointing at ``receiver``, which learns its secret)."""
    body = {"url": url or (receiver.url if receiver else None), **fields}
    r = await client.post("/v1/iln/endpoints", json=body, headers=auth(account))
    assert r.status_code == 201, r.text
    created = r.json()
    if receiver is not None:
        receiver.secrets.append(created["secret"])
    return created


async def deliveries(
    client: httpx.AsyncClient, account: dict[str, Any], **params: Any
) -> list[dict[str, Any]]:
    r = await client.get("/v1/iln/deliveries", params=params, headers=auth(account))
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def only_delivery(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    items = await deliveries(client, account)
    assert len(items) == 1, items
    return items[0]


async def count_deliveries(db: Database) -> int:
    return await count(db, IlnDelivery)
