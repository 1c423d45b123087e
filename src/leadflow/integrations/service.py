"""Platform credentials and what leadflow learns about platform customers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.integrations.esp_credentials import check_esp_credentials
from leadflow.integrations.formats import CustomerRef
from leadflow.integrations.schemas import IntegrationIn, IntegrationOut, Platform
from leadflow.kit.db import insert_for
from leadflow.kit.errors import field_error, not_found
from leadflow.kit.pagination import Page
from leadflow.kit.secrets import Reencrypted, reencrypt_batch
from leadflow.models.integrations import Integration, PlatformCustomer


def platform_or_404(value: str) -> Platform:
    try:
        return Platform(value)
    except ValueError:
        raise not_found("platform") from None


def webhook_url(base_url: str, account_id: str, platform: Platform) -> str:
    """Where the platform must send its webhooks for this account."""
    return f"{base_url.rstrip('/')}/v1/webhooks/{account_id}/{platform.value}"


def integration_view(
    base_url: str, account_id: str, platform: Platform, row: Integration | None
) -> IntegrationOut:
    """The integration without its secrets (they are write-only)."""
    return IntegrationOut(
        platform=platform,
        configured=row is not None,
        webhook_url=webhook_url(base_url, account_id, platform),
        updated_at=row.updated_at if row is not None else None,
    )


async def integrations_of(session: AsyncSession, account_id: str) -> dict[str, Integration]:
    rows = await session.execute(select(Integration).where(Integration.account_id == account_id))
    return {row.platform: row for row in rows.scalars()}


async def list_integrations(
    session: AsyncSession, account_id: str, base_url: str
) -> Page[IntegrationOut]:
    """Every platform, configured or not."""
    rows = await integrations_of(session, account_id)
    return Page[IntegrationOut](
        items=[integration_view(base_url, account_id, p, rows.get(p.value)) for p in Platform],
        next_cursor=None,
    )


async def get_integration(
    session: AsyncSession, account_id: str, platform: Platform
) -> Integration | None:
    return await session.get(Integration, (account_id, platform.value))


def check_credentials(platform: Platform, body: IntegrationIn) -> None:
    if platform is Platform.PAYPRO and body.validation_key is None:
        raise field_error(
            "validation_key", "is required for PayPro Global (it verifies the SIGNATURE field)"
        )
    if platform is not Platform.PAYPRO and body.validation_key is not None:
        raise field_error("validation_key", "is only used by PayPro Global")
    if platform is Platform.STRIPE and not body.secret.startswith("whsec_"):
        # Guards against pasting an API key (sk_…), which must never be stored here.
        raise field_error("secret", "a Stripe webhook signing secret starts with 'whsec_'")
    check_esp_credentials(platform, body.secret)


async def put_integration(
    session: AsyncSession,
    account_id: str,
    platform: Platform,
    body: IntegrationIn,
    now: dt.datetime,
    base_url: str,
) -> IntegrationOut:
    check_credentials(platform, body)
    row = await get_integration(session, account_id, platform)
    if row is None:
        row = Integration(account_id=account_id, platform=platform.value, created_at=now)
        session.add(row)
    row.secret = body.secret
    row.validation_key = body.validation_key
    row.updated_at = now
    await session.flush()
    return integration_view(base_url, account_id, platform, row)


async def delete_integration(session: AsyncSession, account_id: str, platform: Platform) -> None:
    result = await session.execute(
        delete(Integration)
        .where(Integration.account_id == account_id, Integration.platform == platform.value)
        .returning(Integration.platform)
    )
    if result.scalar_one_or_none() is None:
        raise not_found(f"{platform.value} integration")


async def learn_customer(
    session: AsyncSession, account_id: str, platform: str, ref: CustomerRef, now: dt.datetime
) -> None:
    """Remember the email (and names) behind a platform customer id."""
    if ref.email is None:
        return
    insert = insert_for(session)
    stmt = insert(PlatformCustomer).values(
        account_id=account_id,
        platform=platform,
        customer_id=ref.id,
        email=ref.email.lower(),
        first_name=ref.first_name,
        last_name=ref.last_name,
        updated_at=now,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["account_id", "platform", "customer_id"],
            set_={
                "email": stmt.excluded.email,
                "first_name": func.coalesce(stmt.excluded.first_name, PlatformCustomer.first_name),
                "last_name": func.coalesce(stmt.excluded.last_name, PlatformCustomer.last_name),
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


async def known_customer(
    session: AsyncSession, account_id: str, platform: str, customer_id: str
) -> PlatformCustomer | None:
    return await session.get(PlatformCustomer, (account_id, platform, customer_id))


async def reencrypt_integration_secrets(
    session: AsyncSession, after: tuple[str, ...] | None, limit: int
) -> Reencrypted:
    """One batch of ``leadflow secret-key rotate``: platform secrets under the current key."""
    return await reencrypt_batch(
        session,
        Integration,
        [Integration.account_id, Integration.platform],
        [Integration.secret, Integration.validation_key],
        after=after,
        limit=limit,
    )
