"""Accounts: creation (keys, secrets, built-in groups), authentication, settings, and the
switch of each lead group (this package is the only writer of lead groups)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.capture import new_publishable_key
from leadflow.accounts.errors import LastApiKey
from leadflow.accounts.schemas import (
    AccountCreated,
    AccountSettings,
    AccountSettingsUpdate,
    ApiKeyCreated,
    ApiKeyOut,
    WebhookSecretRotated,
)
from leadflow.accounts.views import (
    account_created_view,
    api_key_created_view,
    api_key_view,
    settings_view,
    webhook_secret_rotated_view,
)
from leadflow.kit.durations import parse_duration
from leadflow.kit.errors import not_found
from leadflow.kit.ids import new_id
from leadflow.kit.pagination import Page, keyset_page
from leadflow.kit.secrets import Reencrypted, reencrypt_batch
from leadflow.kit.signing import hash_api_key, new_api_key, new_webhook_secret
from leadflow.models.accounts import Account, ApiKey
from leadflow.models.campaigns import Campaign
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
        publishable_key=new_publishable_key(),
        capture_settings={},
    )
    session.add(account)
    api_key, _ = _new_key(session, account.id, "default", now)
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


def _new_key(
    session: AsyncSession, account_id: str, name: str, now: dt.datetime
) -> tuple[str, ApiKey]:
    plaintext = new_api_key()
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        key_hash=hash_api_key(plaintext),
        prefix=plaintext[:10],
        name=name,
        created_at=now,
    )
    session.add(key)
    return plaintext, key


# A key's last use is recorded to the minute: at most one write per key and minute, not one
# per request.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


async def account_for_api_key(
    session: AsyncSession, api_key: str, now: dt.datetime
) -> Account | None:
    """The account an active key belongs to; records the key's use (to the minute)."""
    stmt = (
        select(Account, ApiKey.id, ApiKey.last_used_at)
        .join(ApiKey, ApiKey.account_id == Account.id)
        .where(ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None))
    )
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        return None
    account, key_id, last_used_at = row
    cutoff = now - LAST_USED_PRECISION
    if last_used_at is None or last_used_at <= cutoff:
        # Conditional, so concurrent requests with the same key write it once.
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= cutoff),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    result: Account = account
    return result


async def get_account(session: AsyncSession, account_id: str) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise not_found("account")
    return account


@dataclass(frozen=True)
class AccountSummary:
    """What an operator lists of an account: no secret."""

    id: str
    name: str
    created_at: dt.datetime
    lead_management_enabled: bool
    api_keys: int  # active ones
    campaigns: int  # not archived


async def account_summaries(session: AsyncSession) -> list[AccountSummary]:
    """Every account, oldest first, with its counts of active keys and campaigns (read
    column by column: the encrypted secrets are never read)."""
    keys = (
        select(func.count())
        .where(ApiKey.account_id == Account.id, ApiKey.revoked_at.is_(None))
        .scalar_subquery()
    )
    campaigns = (
        select(func.count())
        .where(Campaign.account_id == Account.id, Campaign.archived_at.is_(None))
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            Account.id,
            Account.name,
            Account.created_at,
            Account.lead_management_enabled,
            keys,
            campaigns,
        ).order_by(Account.created_at, Account.id)
    )
    return [AccountSummary(*row) for row in rows]


async def list_api_keys(
    session: AsyncSession, account_id: str, limit: int, cursor: str | None
) -> Page[ApiKeyOut]:
    """The account's active keys, oldest first (revoked keys are gone)."""
    stmt = select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
    rows, next_cursor = await keyset_page(
        session, stmt, (ApiKey.created_at, ApiKey.id), limit=limit, cursor=cursor
    )
    return Page[ApiKeyOut](items=[api_key_view(r) for r in rows], next_cursor=next_cursor)


async def create_api_key(
    session: AsyncSession, account_id: str, name: str, now: dt.datetime
) -> ApiKeyCreated:
    """A new key for the account, answered in clear this once (only its hash is stored)."""
    plaintext, key = _new_key(session, account_id, name, now)
    await session.flush()
    return api_key_created_view(key, plaintext)


async def revoke_api_key(
    session: AsyncSession, account_id: str, key_id: str, now: dt.datetime
) -> None:
    """The key stops authenticating at once (the next request with it gets 401). The account's
    last active key is refused (``LastApiKey``): it would lock the merchant out."""
    # Locks the account's keys (PostgreSQL) so two revocations cannot both see a second key.
    keys = (
        await session.execute(
            select(ApiKey)
            .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
            .with_for_update()
        )
    ).scalars()
    active = list(keys)
    key = next((k for k in active if k.id == key_id), None)
    if key is None:
        raise not_found("API key")
    if len(active) == 1:
        raise LastApiKey()
    key.revoked_at = now
    await session.flush()


def webhook_secrets(account: Account, now: dt.datetime) -> list[str]:
    """The secrets that verify the account's inbound webhooks, in clear: the current one, and
    the previous one until its overlap after a rotation ends."""
    secrets_ = [account.webhook_secret]
    expires = account.previous_webhook_secret_expires_at
    if account.previous_webhook_secret and expires is not None and expires > now:
        secrets_.append(account.previous_webhook_secret)
    return secrets_


async def rotate_webhook_secret(
    session: AsyncSession, account: Account, now: dt.datetime, overlap: dt.timedelta
) -> WebhookSecretRotated:
    """A new webhook secret, answered in clear this once. For ``overlap`` the previous one is
    still accepted, so platforms can switch without a refused delivery; a zero overlap drops
    it at once (a leaked secret). A rotation during the overlap ends the older one."""
    keep = overlap > dt.timedelta(0)
    account.previous_webhook_secret = account.webhook_secret if keep else None
    account.previous_webhook_secret_expires_at = now + overlap if keep else None
    account.webhook_secret = new_webhook_secret()
    await session.flush()
    return webhook_secret_rotated_view(account)


async def reencrypt_account_secrets(
    session: AsyncSession, after: tuple[str, ...] | None, limit: int
) -> Reencrypted:
    """One batch of ``leadflow secret-key rotate``: webhook secrets under the current key."""
    return await reencrypt_batch(
        session,
        Account,
        [Account.id],
        [Account.webhook_secret, Account.previous_webhook_secret],
        after=after,
        limit=limit,
    )


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
_REQUIRED_SETTINGS = (
    "lead_management_enabled",
    "default_currency",
    "timezone",
    "after_unknown_step",
    "min_hours_between_emails",
)


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
