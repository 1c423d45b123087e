"""Capturing a lead: one per account, source type and reference; later events update it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.lifecycle.conversions import convert_by_earlier_purchase
from leadflow.lifecycle.enrollment import enroll_new_lead
from leadflow.models.accounts import Account
from leadflow.models.leads import Lead, LeadEvent
from leadflow.notifications import events
from leadflow.vocabulary import LeadEventRole, LeadStatus, SourceType


@dataclass(frozen=True)
class LeadFacts:
    """What an event says about its lead, already validated and normalised."""

    source_type: SourceType
    reference: str
    email: str
    occurred_at: dt.datetime
    first_name: str | None = None
    last_name: str | None = None
    language: str | None = None
    country: str | None = None
    timezone: str | None = None
    products: list[dict[str, Any]] = field(default_factory=list)
    amount: Decimal | None = None
    currency: str | None = None
    recovery_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        """The columns a newer event overwrites (when it carries a value)."""
        return {
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "language": self.language,
            "country": self.country,
            "timezone": self.timezone,
            "products": self.products,
            "amount": self.amount,
            "currency": self.currency,
            "recovery_url": self.recovery_url,
        }


async def capture_lead(
    session: AsyncSession,
    account: Account,
    event_id: str,
    facts: LeadFacts,
    *,
    attribution_window: dt.timedelta,
    now: dt.datetime,
) -> Lead:
    """Create or update the lead an event describes. A new lead is converted by a purchase
    that arrived first, else enrolled in the best matching campaign, and announced (ILN)."""
    lead, created = await _upsert_lead(session, account.id, event_id, facts, now)
    if lead.status == LeadStatus.OPEN:
        await convert_by_earlier_purchase(session, lead, attribution_window, now)
    if created:
        campaign_id = None
        if lead.status == LeadStatus.OPEN:
            campaign_id = await enroll_new_lead(session, account, lead, now)
        await events.lead_captured(session, lead, campaign_id, now)
    return lead


async def _upsert_lead(
    session: AsyncSession, account_id: str, event_id: str, facts: LeadFacts, now: dt.datetime
) -> tuple[Lead, bool]:
    details = facts.details()
    occurred_at = facts.occurred_at
    insert = insert_for(session)
    stmt = (
        insert(Lead)
        .values(
            id=new_id("lead"),
            account_id=account_id,
            source_type=facts.source_type.value,
            reference=facts.reference,
            status=LeadStatus.OPEN.value,
            attributes=facts.attributes,
            captured_at=occurred_at,
            last_event_at=occurred_at,
            created_at=now,
            updated_at=now,
            **details,
        )
        .on_conflict_do_nothing(index_elements=["account_id", "source_type", "reference"])
        .returning(Lead.id)
    )
    created = (await session.execute(stmt)).scalar_one_or_none() is not None
    lead = (
        await session.execute(
            select(Lead)
            .where(
                Lead.account_id == account_id,
                Lead.source_type == facts.source_type.value,
                Lead.reference == facts.reference,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if not created:
        if occurred_at >= lead.last_event_at:
            for name, value in details.items():
                if value is not None and value != []:
                    setattr(lead, name, value)
            lead.attributes = {**lead.attributes, **facts.attributes}
            lead.last_event_at = occurred_at
        lead.captured_at = min(lead.captured_at, occurred_at)
        lead.updated_at = now
    session.add(
        LeadEvent(
            lead_id=lead.id,
            event_id=event_id,
            account_id=account_id,
            role=LeadEventRole.CAPTURE if created else LeadEventRole.UPDATE,
        )
    )
    await session.flush()
    return lead, created
