"""Suppressions (unsubscribes) and tracked visits: the only writer of both, and what the links
in emails (signed tokens, no login) and the merchant's suppression list do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.counters import count_visitor
from leadflow.abtest.service import evaluate as evaluate_ab_test
from leadflow.kit.db import insert_for
from leadflow.kit.errors import NotFound, not_found
from leadflow.kit.ids import new_id
from leadflow.kit.metrics import LEAD_STATUS_CHANGES, count_after_commit
from leadflow.kit.pagination import Page, keyset_page
from leadflow.lifecycle.schemas import SuppressionIn, SuppressionOut, suppression_view
from leadflow.lifecycle.sequence import stop_active
from leadflow.models.accounts import Account
from leadflow.models.enrollments import Enrollment, Message
from leadflow.models.leads import Lead
from leadflow.models.tracking import Suppression, Visit
from leadflow.notifications import events
from leadflow.templates.tokens import CLICK, UNSUBSCRIBE, read_token, verify_token
from leadflow.vocabulary import LeadStatus, StopReason, SuppressionReason


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
    await stop_active(session, StopReason.SUPPRESSED, now, Enrollment.lead_id.in_(lead_ids))
    if reason == SuppressionReason.UNSUBSCRIBED:
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
            count_after_commit(session, LEAD_STATUS_CHANGES.labels("open", "unsubscribed"))
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
    ).returning(Visit.clicks)
    if (await session.execute(stmt)).scalar_one() == 1:  # a first visit: a new unique visitor
        await count_visitor(
            session,
            account_id=message.account_id,
            campaign_id=message.campaign_id,
            variant_id=message.variant_id,
        )
    # A new unique visitor can be what decides the campaign's A/B test.
    await evaluate_ab_test(session, message.campaign_id, now)


# -- links in emails ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unsubscription:
    """What the unsubscribe pages show: whose emails stop, to which address."""

    email: str
    merchant: str


async def _verified(session: AsyncSession, token: str, kind: str) -> tuple[Account, str]:
    """The account that signed the token, and the token's subject (lead or message id)."""
    claims = read_token(token)
    account = await session.get(Account, claims.account_id) if claims else None
    if claims is None or account is None or not verify_token(account.link_secret, kind, token):
        raise NotFound("This link is not valid.")
    return account, claims.subject_id


async def _unsubscribe_link(session: AsyncSession, token: str) -> tuple[Account, Lead]:
    account, lead_id = await _verified(session, token, UNSUBSCRIBE)
    lead = await session.get(Lead, lead_id)
    if lead is None or lead.account_id != account.id:
        raise not_found("link")
    return account, lead


async def unsubscription(session: AsyncSession, token: str) -> Unsubscription:
    """What an unsubscribe link would stop; changes nothing (mail scanners follow links)."""
    account, lead = await _unsubscribe_link(session, token)
    return Unsubscription(email=lead.email, merchant=account.sender_name or account.name)


async def unsubscribe(session: AsyncSession, token: str, now: dt.datetime) -> Unsubscription:
    """The lead of a signed unsubscribe link unsubscribes: its address is suppressed."""
    account, lead = await _unsubscribe_link(session, token)
    await suppress(session, account.id, lead.email, SuppressionReason.UNSUBSCRIBED, now)
    return Unsubscription(email=lead.email, merchant=account.sender_name or account.name)


async def click(session: AsyncSession, token: str, now: dt.datetime) -> str:
    """Record the visit of a signed tracked link; returns the URL stored on the lead (never
    one taken from the request: no open redirect)."""
    account, message_id = await _verified(session, token, CLICK)
    message = await session.get(Message, message_id)
    if message is None or message.account_id != account.id:
        raise not_found("link")
    lead = await session.get_one(Lead, message.lead_id)
    if not lead.recovery_url:
        raise not_found("checkout link")
    await record_visit(session, message, now)
    return lead.recovery_url


# -- the merchant's suppression list --------------------------------------------------------


async def list_suppressions(
    session: AsyncSession, account_id: str, email: str | None, limit: int, cursor: str | None
) -> Page[SuppressionOut]:
    stmt = select(Suppression).where(Suppression.account_id == account_id)
    if email:
        stmt = stmt.where(Suppression.email == email.lower())
    rows, next_cursor = await keyset_page(
        session, stmt, (Suppression.id,), limit=limit, cursor=cursor
    )
    return Page[SuppressionOut](items=[suppression_view(r) for r in rows], next_cursor=next_cursor)


async def add_suppression(
    session: AsyncSession, account_id: str, body: SuppressionIn, now: dt.datetime
) -> SuppressionOut:
    """Idempotent: suppressing an address twice keeps the first entry. Stops its follow-ups."""
    return suppression_view(await suppress(session, account_id, str(body.email), body.reason, now))


async def remove_suppression(session: AsyncSession, account_id: str, email: str) -> None:
    """Future leads of the address get follow-ups again; stopped sequences stay stopped."""
    result = await session.execute(
        delete(Suppression)
        .where(Suppression.account_id == account_id, Suppression.email == email.lower())
        .returning(Suppression.id)
    )
    if result.scalar_one_or_none() is None:
        raise not_found("suppression")
