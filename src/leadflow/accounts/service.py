"""Accounts: creation (keys, secrets, built-in groups), authentication, settings."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.models import Account, ApiKey
from leadflow.domain import BUILTIN_GROUPS, DEFAULT_MIN_DELAYS, SourceType
from leadflow.kit.ids import new_id
from leadflow.kit.signing import hash_api_key, new_api_key, new_webhook_secret
from leadflow.leads.models import LeadGroup


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
