"""Campaign bodies (steps, variants) and the campaign API calls built on them."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import httpx

from tests.support.api import auth, ok_json


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
    client: httpx.AsyncClient,
    account: dict[str, Any],
    *,
    name: str = "Cart recovery DE",
    source: str = "abandoned_checkout",
    steps: Sequence[dict[str, Any]] | None = None,
    variants: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Create a campaign (a draft unless ``status`` is given) from ``campaign_body`` with
    ``variants``, or one variant A of ``steps`` (its weight left to the server's default), or
    else ``variant()``."""
    if variants is None:
        variants = [{"name": "A", "steps": list(steps)}] if steps else [variant()]
    body = campaign_body(name, source=source, variants=variants, **fields)
    response = await client.post("/v1/campaigns", json=body, headers=auth(account))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def get_campaign(
    client: httpx.AsyncClient, account: dict[str, Any], campaign_id: str
) -> dict[str, Any]:
    result: dict[str, Any] = ok_json(
        await client.get(f"/v1/campaigns/{campaign_id}", headers=auth(account))
    )
    return result


async def patch_campaign(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    campaign_id: str,
    *,
    expect: int | None = None,
    **changes: Any,
) -> httpx.Response:
    """``PATCH`` the campaign with ``changes``; with ``expect``, the answer has that status."""
    response = await client.patch(
        f"/v1/campaigns/{campaign_id}", json=changes, headers=auth(account)
    )
    if expect is not None:
        assert response.status_code == expect, response.text
    return response
