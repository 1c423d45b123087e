"""Capturing a lead: one per account, source type and reference; later events update it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import ROWS_PER_STATEMENT, chunks, insert_for, table
from leadflow.kit.ids import new_id
from leadflow.kit.metrics import LEAD_STATUS_CHANGES, count_after_commit
from leadflow.lifecycle.conversions import convert_by_earlier_purchases
from leadflow.lifecycle.enrollment import enroll_new_leads
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


Captured = tuple[Lead, bool]
"""A lead an event described, and whether that event created it."""

_KEY = ("account_id", "source_type", "reference")


async def upsert_leads(
    session: AsyncSession,
    account_id: str,
    items: Sequence[tuple[str, LeadFacts]],
    now: dt.datetime,
) -> list[Captured]:
    """Create or update the lead each ``(event_id, facts)`` describes, set-based: one insert
    for the new leads, one locked read of the known ones, one insert of their lead events.
    Items about the same lead apply in order, as if they came one by one. Returns, per item,
    its lead and whether that item created it."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for index, (_event_id, facts) in enumerate(items):
        by_key.setdefault((facts.source_type.value, facts.reference), []).append(index)
    new_rows = []
    for key, indexes in sorted(by_key.items()):
        state = _fresh(items[indexes[0]][1])
        for index in indexes[1:]:
            _apply(state, items[index][1])
        new_rows.append(_lead_row(account_id, key, state, now))

    insert = insert_for(session)
    created: dict[tuple[str, str], Lead] = {}
    if new_rows:
        stmt = (
            insert(Lead)
            .on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(Lead)
            .execution_options(populate_existing=True)
        )
        for lead in await session.scalars(stmt, new_rows):
            created[(lead.source_type, lead.reference)] = lead
        if created:
            count_after_commit(session, LEAD_STATUS_CHANGES.labels("none", "open"), len(created))
    known = await _lock_known(session, account_id, [key for key in by_key if key not in created])
    for key, lead in known.items():
        state = {name: getattr(lead, name) for name in _STATE}
        for index in by_key[key]:
            _apply(state, items[index][1])
        for name, value in state.items():
            if value != getattr(lead, name):
                setattr(lead, name, value)
        lead.updated_at = now

    out: list[Captured] = []
    lead_events = []
    for index, (event_id, facts) in enumerate(items):
        key = (facts.source_type.value, facts.reference)
        lead = created.get(key) or known[key]
        first = key in created and by_key[key][0] == index
        out.append((lead, first))
        lead_events.append(
            {
                "lead_id": lead.id,
                "event_id": event_id,
                "account_id": account_id,
                "role": LeadEventRole.CAPTURE if first else LeadEventRole.UPDATE,
            }
        )
    if lead_events:
        await session.execute(insert(table(LeadEvent)), lead_events)
    return out


async def settle_new_leads(
    session: AsyncSession,
    account: Account,
    captured: Sequence[Captured],
    attribution_window: dt.timedelta,
    now: dt.datetime,
) -> None:
    """After ``upsert_leads`` (and after the purchases of the same batch were applied): an
    open lead is converted by a purchase that arrived first; a new lead that stays open is
    enrolled in the best matching campaign; every new lead is announced (ILN)."""
    leads = list({lead.id: lead for lead, _ in captured}.values())
    await convert_by_earlier_purchases(
        session,
        [lead for lead in leads if lead.status == LeadStatus.OPEN],
        attribution_window,
        now,
    )
    new = [lead for lead, created in captured if created]
    campaigns = await enroll_new_leads(
        session, account, [lead for lead in new if lead.status == LeadStatus.OPEN], now
    )
    await events.leads_captured(session, [(lead, campaigns.get(lead.id)) for lead in new], now)


# The columns an event writes, and how a later event about the same lead changes them.
_DETAILS = (
    "email",
    "first_name",
    "last_name",
    "language",
    "country",
    "timezone",
    "products",
    "amount",
    "currency",
    "recovery_url",
)
_STATE = (*_DETAILS, "attributes", "captured_at", "last_event_at")


def _fresh(facts: LeadFacts) -> dict[str, Any]:
    return {
        **facts.details(),
        "attributes": dict(facts.attributes),
        "captured_at": facts.occurred_at,
        "last_event_at": facts.occurred_at,
    }


def _apply(state: dict[str, Any], facts: LeadFacts) -> None:
    """A later event about a known lead: a newer one overwrites what it carries and adds its
    attributes; any one can move the capture time earlier."""
    if facts.occurred_at >= state["last_event_at"]:
        for name, value in facts.details().items():
            if value is not None and value != []:
                state[name] = value
        state["attributes"] = {**state["attributes"], **facts.attributes}
        state["last_event_at"] = facts.occurred_at
    state["captured_at"] = min(state["captured_at"], facts.occurred_at)


def _lead_row(
    account_id: str, key: tuple[str, str], state: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    return {
        "id": new_id("lead"),
        "account_id": account_id,
        "source_type": key[0],
        "reference": key[1],
        "status": LeadStatus.OPEN.value,
        "converted_at": None,
        "created_at": now,
        "updated_at": now,
        **state,
    }


async def _lock_known(
    session: AsyncSession, account_id: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Lead]:
    """The existing leads with these keys, locked for the rest of the transaction."""
    out: dict[tuple[str, str], Lead] = {}
    by_source: dict[str, list[str]] = {}
    for source_type, reference in sorted(keys):
        by_source.setdefault(source_type, []).append(reference)
    for source_type, references in by_source.items():
        for chunk in chunks(references, ROWS_PER_STATEMENT):
            rows = await session.scalars(
                select(Lead)
                .where(
                    Lead.account_id == account_id,
                    Lead.source_type == source_type,
                    Lead.reference.in_(chunk),
                )
                .order_by(Lead.reference)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            out.update(((lead.source_type, lead.reference), lead) for lead in rows)
    return out
