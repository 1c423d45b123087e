"""Account-level switches whose changes reach into the lead lifecycle: the settings (a lowered
minimum delay makes waiting first steps due again) and the lead groups' on/off switch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.schemas import AccountSettings, AccountSettingsUpdate
from leadflow.accounts.service import change_settings, set_group_active, settings_of
from leadflow.leads.schemas import LeadGroupOut
from leadflow.leads.service import group_out
from leadflow.lifecycle.enrollment import recheck_first_steps
from leadflow.models.accounts import Account


async def update_settings(
    session: AsyncSession, account: Account, body: AccountSettingsUpdate, now: dt.datetime
) -> AccountSettings:
    """Apply the settings; where a minimum delay went down, waiting first steps are made due
    so the dispatcher recomputes their time under the new minimum."""
    for source_type in await change_settings(session, account, body, now):
        await recheck_first_steps(session, account.id, source_type)
    return settings_of(account)


async def set_group_status(
    session: AsyncSession, account_id: str, key: str, status: str, now: dt.datetime
) -> LeadGroupOut:
    """Switch a lead group ``active`` or ``inactive``; answered with its live open-lead count.
    The dispatcher reads the switch when a follow-up is due."""
    group = await set_group_active(session, account_id, key, status == "active", now)
    return await group_out(session, group)
