"""Suppressions (unsubscribes) and tracked visits."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.service import evaluate as evaluate_ab_test
from leadflow.dispatch.models import Enrollment, Message
from leadflow.domain import LeadStatus
from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.leads.models import Lead
from leadflow.notifications import events
from leadflow.tracking.models import Suppression, Visit


async def suppress(
    session: AsyncSession, account_id: str, email: str, reason: str, now: dt.datetime
) -> Suppression:
    """Suppress the address (idempotent) and stop every follow-up still planned for it."""
    email = email.lower()
    insert = insert_for(session)
    await session.execute(
        insert(Suppression)
        .values(id=new_id("sup"), account_id=account_id, email=email, reason=reason, created_at=now)
        .on_conflict_do_nothing(index_elements=["account_id", "email"])
    )
    lead_ids = select(Lead.id).where(Lead.account_id == account_id, Lead.email == email)
    await session.execute(
        update(Enrollment)
        .where(Enrollment.lead_id.in_(lead_ids), Enrollment.state == "active")
        .values(state="stopped", stop_reason="suppressed", lease_until=None, lease_token=None)
    )
    if reason == "unsubscribed":
        open_leads = (
            await session.execute(
                select(Lead).where(
                    Lead.account_id == account_id,
                    Lead.email == email,
                    Lead.status == LeadStatus.OPEN.value,
                )
            )
        ).scalars()
        for lead in open_leads:
            lead.status = LeadStatus.UNSUBSCRIBED.value
            lead.updated_at = now
            await events.lead_unsubscribed(session, lead, now)
    return (
        await session.execute(
            select(Suppression).where(
                Suppression.account_id == account_id, Suppression.email == email
            )
        )
    ).scalar_one()


async def record_visit(session: AsyncSession, message: Message, now: dt.datetime) -> None:
    """One visit per lead and variant; later clicks only bump the counter."""
    insert = insert_for(session)
    stmt = insert(Visit).values(
        id=new_id("vis"),
        account_id=message.account_id,
        lead_id=message.lead_id,
        campaign_id=message.campaign_id,
        variant_id=message.variant_id,
        message_id=message.id,
        step=message.step,
        clicks=1,
        first_at=now,
        last_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["lead_id", "variant_id"],
        set_={"clicks": Visit.clicks + 1, "last_at": now},
    )
    await session.execute(stmt)
    # A new unique visitor can be what decides the campaign's A/B test.
    await evaluate_ab_test(session, message.campaign_id, now)
