"""Capture form settings and sign-ups over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from leadflow.kit.db import Database
from leadflow.models.capture import CaptureConsent
from tests.support.api import auth, ok_json

SHOP = "https://shop.example.com"


async def capture_settings(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = ok_json(
        await client.get("/v1/capture/settings", headers=auth(account))
    )
    return result


async def put_capture_settings(
    client: httpx.AsyncClient, account: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    response = await client.put("/v1/capture/settings", json=changes, headers=auth(account))
    result: dict[str, Any] = ok_json(response)
    return result


async def public_key(client: httpx.AsyncClient, account: dict[str, Any]) -> str:
    key: str = (await capture_settings(client, account))["publishable_key"]
    return key


def signup(email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    return {"email": email, "consent": True, "first_name": "Jane", **extra}


async def leads(client: httpx.AsyncClient, account: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok_json(await client.get("/v1/leads", headers=auth(account)))[
        "items"
    ]
    return items


async def consents(db: Database) -> list[CaptureConsent]:
    async with db.session() as session:
        rows = await session.scalars(select(CaptureConsent).order_by(CaptureConsent.created_at))
        return list(rows)
