from __future__ import annotations

from fastapi import APIRouter, Depends, status

from leadflow.accounts.schemas import (
    AccountCreate,
    AccountCreated,
    AccountSettings,
    AccountSettingsUpdate,
)
from leadflow.accounts.service import register_account, settings_of
from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep, require_admin
from leadflow.kit.errors import error_responses
from leadflow.lifecycle.account_settings import update_settings

router = APIRouter()


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
    body: AccountSettingsUpdate, account: CurrentAccount, session: SessionDep, clock: ClockDep
) -> AccountSettings:
    """Takes the object `GET` returns; read-only fields are ignored, omitted fields unchanged.

    `min_delays` may be lowered down to `PT0S`.
    """
    return await update_settings(session, account, body, clock.now())
