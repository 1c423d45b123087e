"""Accounts: creation (keys, secrets, built-in groups), authentication, settings, and the
switch of each lead group (this package is the only writer of lead groups)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.schemas import AccountCreated, AccountSettings, AccountSettingsUpdate
from leadflow.accounts.views import account_created_view, settings_view
from leadflow.kit.durations import parse_duration
from leadflow.kit.errors import not_found
from leadflow.kit.ids import new_id
from leadflow.kit.signing import hash_api_key, new_api_key, new_webhook_secret
from leadflow.models.accounts import Account, ApiKey
from leadflow.models.leads import LeadGroup
from leadflow.vocabulary import BUILTIN_GROUPS, DEFAULT_MIN_DELAYS, SourceType


@dataclass(frozen=True)
class NewAccount:
    """The only moment the API key exists in clear."""

    account: Account
    api_key: str


async def create_account(session: AsyncSession, name: str, now: dt.datetime) -> NewAccount:
    account = Account(
        id=new_id("acc"),
        name=name,
        created_at=now,
        updated_at=now,
        lead_management_enabled=True,
        default_currency="USD",
        timezone="UTC",
        min_delays={},
        webhook_secret=new_webhook_secret(),
        link_secret=secrets.token_urlsafe(32),
        min_hours_between_emails=12,
    )
    session.add(account)
    api_key = new_api_key()
    session.add(
        ApiKey(
            id=new_id("key"),
            account_id=account.id,
            key_hash=hash_api_key(api_key),
            prefix=api_key[:10],
            created_at=now,
        )
    )
    for position, (source_type, group_name) in enumerate(BUILTIN_GROUPS):
        session.add(
            LeadGroup(
                id=new_id("grp"),
                account_id=account.id,
                key=source_type.value,
                name=group_name,
                active=True,
                position=position,
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()
    return NewAccount(account=account, api_key=api_key)


async def register_account(session: AsyncSession, name: str, now: dt.datetime) -> AccountCreated:
    """A new account, answered with its API key and webhook secret (shown only this once)."""
    return account_created_view(await create_account(session, name, now))


async def account_for_api_key(session: AsyncSession, api_key: str) -> Account | None:
    stmt = (
        select(Account)
        .join(ApiKey, ApiKey.account_id == Account.id)
        .where(ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def min_delay(account: Account, source_type: str) -> dt.timedelta:
    """The account's minimum delay before the first follow-up for a source type."""
    if source_type in account.min_delays:
        return dt.timedelta(seconds=int(account.min_delays[source_type]))
    return DEFAULT_MIN_DELAYS.get(SourceType(source_type), dt.timedelta(0))


def effective_min_delays(account: Account) -> dict[str, dt.timedelta]:
    return {s.value: min_delay(account, s.value) for s in DEFAULT_MIN_DELAYS}


def settings_of(account: Account) -> AccountSettings:
    return settings_view(account, effective_min_delays(account))


# Null for a required setting means "unchanged".
_REQUIRED_SETTINGS = ("lead_management_enabled", "default_currency", "timezone")


async def change_settings(
    session: AsyncSession, account: Account, body: AccountSettingsUpdate, now: dt.datetime
) -> list[str]:
    """Apply the fields ``body`` sets (read-only ones ignored). Returns the source types whose
    minimum delay went down: their waiting first steps may be due sooner."""
    changes = body.model_dump(
        exclude_unset=True, exclude={"account_id", "name", "updated_at", "min_delays"}
    )
    for field, value in changes.items():
        if value is None and field in _REQUIRED_SETTINGS:
            continue
        setattr(account, field, str(value) if field == "sender_email" and value else value)
    lowered: list[str] = []
    if body.min_delays is not None:
        before = effective_min_delays(account)
        delays = dict(account.min_delays)
        for key, value in body.min_delays.model_dump(exclude_none=True).items():
            delays[key] = int(parse_duration(value).total_seconds())
        account.min_delays = delays
        lowered = [
            source_type
            for source_type, delay in effective_min_delays(account).items()
            if delay < before[source_type]
        ]
    account.updated_at = now
    await session.flush()
    return lowered


async def set_group_active(
    session: AsyncSession, account_id: str, key: str, active: bool, now: dt.datetime
) -> LeadGroup:
    """Switch a lead group on or off. An inactive group still captures and counts leads; no
    follow-up goes to its leads."""
    group = (
        await session.execute(
            select(LeadGroup).where(LeadGroup.account_id == account_id, LeadGroup.key == key)
        )
    ).scalar_one_or_none()
    if group is None:
        raise not_found("lead group")
    group.active = active
    group.updated_at = now
    await session.flush()
    return group
