"""Accounts as the API shows them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from leadflow.accounts.schemas import (
    AccountCreated,
    AccountSettings,
    ApiKeyCreated,
    ApiKeyOut,
    MinDelays,
    WebhookSecretRotated,
)
from leadflow.kit.durations import format_duration
from leadflow.models.accounts import Account, ApiKey

if TYPE_CHECKING:  # service.py imports this module
    from leadflow.accounts.service import NewAccount


def settings_view(account: Account, min_delays: Mapping[str, dt.timedelta]) -> AccountSettings:
    """``min_delays``: the effective delay of every source type (defaults included)."""
    delays = {k: format_duration(v) for k, v in min_delays.items()}
    return AccountSettings(
        account_id=account.id,
        name=account.name,
        lead_management_enabled=account.lead_management_enabled,
        default_currency=account.default_currency,
        timezone=account.timezone,
        sender_name=account.sender_name,
        sender_email=account.sender_email,
        min_delays=MinDelays(**delays),
        min_hours_between_emails=account.min_hours_between_emails,
        after_unknown_step=account.after_unknown_step,
        updated_at=account.updated_at,
    )


def account_created_view(created: NewAccount) -> AccountCreated:
    """The only view with the API key and the webhook secret: shown once, at creation."""
    return AccountCreated(
        id=created.account.id,
        name=created.account.name,
        api_key=created.api_key,
        webhook_secret=created.account.webhook_secret,
    )


def api_key_view(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


def api_key_created_view(key: ApiKey, plaintext: str) -> ApiKeyCreated:
    """The only view with the key itself: shown once, at creation."""
    return ApiKeyCreated(**api_key_view(key).model_dump(), key=plaintext)


def webhook_secret_rotated_view(account: Account) -> WebhookSecretRotated:
    return WebhookSecretRotated(
        webhook_secret=account.webhook_secret,
        previous_secret_expires_at=account.previous_webhook_secret_expires_at,
    )
