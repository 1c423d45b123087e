from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Response, status

from leadflow.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountSettings,
    AccountSettingsUpdate,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    WebhookSecretRotated,
)
from leadflow.accounts.service import (
    create_api_key,
    list_api_keys,
    register_account,
    revoke_api_key,
    rotate_webhook_secret,
    settings_of,
)
from leadflow.api.deps import (
    AccountCacheDep,
    ClockDep,
    CurrentAccount,
    SessionDep,
    SettingsDep,
    require_admin,
)
from leadflow.ingest.intake import AccountCache
from leadflow.kit.errors import error_responses
from leadflow.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from leadflow.lifecycle.account_settings import update_settings

router = APIRouter()


def _forget(accounts: AccountCache, account_id: str, after: BackgroundTasks) -> None:
    """Webhook intake must not verify with the account as it was: forget it now, and again
    once the change is committed (a webhook in between may have read the old row)."""
    accounts.forget(account_id)
    after.add_task(accounts.forget, account_id)


@router.post(
    "/v1/admin/accounts",
    tags=["admin"],
    summary="Create an account",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountCreated,
    dependencies=[Depends(require_admin)],
    responses=error_responses(401, 422),
)
async def create_account_route(
    body: AccountCreate, session: SessionDep, clock: ClockDep
) -> AccountCreated:
    """Creates a merchant account with its API key, webhook secret and built-in lead groups."""
    return await register_account(session, body.name, clock.now())


@router.get(
    "/v1/settings",
    tags=["settings"],
    summary="Read the account's settings",
    response_model=AccountSettings,
    responses=error_responses(401),
)
async def get_settings_route(account: CurrentAccount) -> AccountSettings:
    return settings_of(account)


@router.put(
    "/v1/settings",
    tags=["settings"],
    summary="Update the account's settings",
    response_model=AccountSettings,
    responses=error_responses(401, 422),
)
async def put_settings_route(
    body: AccountSettingsUpdate,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    accounts: AccountCacheDep,
    after: BackgroundTasks,
) -> AccountSettings:
    """Takes the object `GET` returns; read-only fields are ignored, omitted fields unchanged.

    `min_delays` may be lowered down to `PT0S`.
    """
    _forget(accounts, account.id, after)
    return await update_settings(session, account, body, clock.now())


@router.post(
    "/v1/webhook-secret/rotate",
    tags=["credentials"],
    summary="Rotate the account's webhook secret",
    response_model=WebhookSecretRotated,
    responses=error_responses(401),
)
async def rotate_webhook_secret_route(
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    accounts: AccountCacheDep,
    after: BackgroundTasks,
) -> WebhookSecretRotated:
    """The response carries the new `whsec_…` secret; it is never shown again. Until
    `previous_secret_expires_at` (LEADFLOW_WEBHOOK_SECRET_ROTATION_HOURS) webhooks signed with
    the previous secret are accepted too, so senders can switch without a refused delivery.
    Rotating again during that time ends the older secret at once."""
    overlap = dt.timedelta(hours=settings.webhook_secret_rotation_hours)
    _forget(accounts, account.id, after)
    return await rotate_webhook_secret(session, account, clock.now(), overlap)


@router.get(
    "/v1/api-keys",
    tags=["credentials"],
    summary="List the account's API keys",
    response_model=Page[ApiKeyOut],
    responses=error_responses(401, 422),
)
async def list_api_keys_route(
    account: CurrentAccount,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[ApiKeyOut]:
    """Active keys, oldest first, with when each last authenticated a request (to the
    minute). The keys themselves are not stored, only their hashes."""
    return await list_api_keys(session, account.id, limit, cursor)


@router.post(
    "/v1/api-keys",
    tags=["credentials"],
    summary="Create an API key",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=error_responses(401, 422),
)
async def create_api_key_route(
    body: ApiKeyCreate, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> ApiKeyCreated:
    """The response carries the key (`lf_…`); it is never shown again."""
    return await create_api_key(session, account.id, body.name, clock.now())


@router.delete(
    "/v1/api-keys/{key_id}",
    tags=["credentials"],
    summary="Revoke an API key",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 404, 409),
)
async def revoke_api_key_route(
    key_id: str, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> Response:
    """The key stops working at once: the next request with it gets 401 (the key of this very
    request may be revoked). The account's last active key is refused with 409
    (`last_api_key`): create its replacement first."""
    await revoke_api_key(session, account.id, key_id, clock.now())
    return Response(status_code=204)
