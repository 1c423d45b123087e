"""Accounts with a platform integration configured."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integrations.helpers import (
    PAYPRO_SECRET,
    PAYPRO_VALIDATION_KEY,
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WC_SECRET,
    configure,
)


@pytest.fixture
async def stripe_account(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    await configure(client, account, "stripe", STRIPE_SECRET)
    return account


@pytest.fixture
async def shopify_account(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    await configure(client, account, "shopify", SHOPIFY_SECRET)
    return account


@pytest.fixture
async def wc_account(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    await configure(client, account, "woocommerce", WC_SECRET)
    return account


@pytest.fixture
async def paypro_account(client: httpx.AsyncClient, account: dict[str, Any]) -> dict[str, Any]:
    await configure(client, account, "paypro", PAYPRO_SECRET, PAYPRO_VALIDATION_KEY)
    return account
