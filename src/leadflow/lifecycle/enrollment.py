"""Which campaign a lead belongs to, which variant it gets, and when its first follow-up is due."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.service import allowed_variants, get_test
from leadflow.campaigns.errors import CampaignEnded, CampaignInactive
from leadflow.campaigns.schemas import BackfillOut
from leadflow.campaigns.service import get_campaign, live_variants, variants_by_campaign
from leadflow.kit.db import insert_for
from leadflow.kit.ids import new_id
from leadflow.lifecycle.rules import first_due
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment
from leadflow.models.leads import Lead
from leadflow.vocabulary import CampaignStatus, EnrollmentState, LeadStatus


def _language_ok(wanted: list[str], language: str | None) -> bool:
    if not wanted:
        return True
    if language is None:
        return False
    primary = language.split("-")[0]
    # A campaign for "de" takes "de-AT" leads; one for "pt-BR" takes only "pt-BR".
    return any(w == language or ("-" not in w and w == primary) for w in wanted)


def matches(campaign: Campaign, lead: Lead) -> bool:
    """Whether the campaign's filters (source, products, languages, countries) take the lead."""
    if campaign.source != "all" and campaign.source != lead.source_type:
        return False
    if campaign.products and not {p["id"] for p in lead.products} & set(campaign.products):
        return False
    if campaign.countries and lead.country not in campaign.countries:
        return False
    return _language_ok(campaign.languages, lead.language)


def specificity(campaign: Campaign) -> int:
    return sum(
        (
            campaign.source != "all",
            bool(campaign.products),
            bool(campaign.languages),
            bool(campaign.countries),
        )
    )


def choose_variant(lead_id: str, variants: list[Variant]) -> Variant:
    """Deterministic, weighted and sticky: the same lead always lands in the same variant."""
    total = sum(v.weight for v in variants)
    point = int.from_bytes(hashlib.sha256(lead_id.encode()).digest()[:8], "big") % total
    for variant in variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return variants[-1]


async def recheck_first_steps(session: AsyncSession, account_id: str, source_type: str) -> None:
    """After the account lowers a minimum delay: make waiting first steps due at once, so the
    dispatcher recomputes their time under the new minimum (it never sends before it)."""
    leads = select(Lead.id).where(Lead.account_id == account_id, Lead.source_type == source_type)
    captured = select(Lead.captured_at).where(Lead.id == Enrollment.lead_id).scalar_subquery()
    await session.execute(
        update(Enrollment)
        .where(
            Enrollment.account_id == account_id,
            Enrollment.state == EnrollmentState.ACTIVE,
            Enrollment.next_step == 1,
            Enrollment.lead_id.in_(leads),
        )
        .values(next_due_at=captured)
    )


async def _insert_enrollment(
    session: AsyncSession,
    account: Account,
    lead: Lead,
    campaign: Campaign,
    variant: Variant,
    now: dt.datetime,
) -> bool:
    insert = insert_for(session)
    stmt = (
        insert(Enrollment)
        .values(
            id=new_id("enr"),
            account_id=account.id,
            lead_id=lead.id,
            campaign_id=campaign.id,
            variant_id=variant.id,
            state=EnrollmentState.ACTIVE,
            next_step=1,
            next_due_at=first_due(account, lead, variant),
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .returning(Enrollment.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def enroll_new_lead(
    session: AsyncSession, account: Account, lead: Lead, now: dt.datetime
) -> str | None:
    """Enroll a just-captured lead in the best running campaign that takes it, if any;
    returns that campaign's id."""
    running = select(Campaign).where(Campaign.account_id == account.id, Campaign.is_running(now))
    campaigns = list((await session.execute(running)).scalars())
    candidates = [c for c in campaigns if matches(c, lead)]
    if not candidates:
        return None
    variants = await variants_by_campaign(session, [c.id for c in candidates])
    candidates = [c for c in candidates if variants[c.id]]
    if not candidates:
        return None
    # Highest priority, then the most specific filters, then the oldest campaign.
    best = min(candidates, key=lambda c: (-c.priority, -specificity(c), c.created_at, c.id))
    test = await get_test(session, best.id)
    variant = choose_variant(lead.id, allowed_variants(test, variants[best.id]))
    if not await _insert_enrollment(session, account, lead, best, variant, now):
        return None
    return best.id


async def backfill(
    session: AsyncSession,
    account: Account,
    campaign: Campaign,
    captured_from: dt.datetime | None,
    now: dt.datetime,
    chunk: int = 1000,
) -> int:
    """Enroll open leads captured earlier that no campaign has taken yet."""
    variants = allowed_variants(
        await get_test(session, campaign.id), await live_variants(session, campaign.id)
    )
    if not variants:
        return 0
    enrolled = 0
    after_id = ""
    while True:
        stmt = (
            select(Lead)
            .where(
                Lead.account_id == account.id,
                Lead.status == LeadStatus.OPEN.value,
                Lead.id > after_id,
                ~exists().where(Enrollment.lead_id == Lead.id),
            )
            .order_by(Lead.id)
            .limit(chunk)
        )
        if campaign.source != "all":
            stmt = stmt.where(Lead.source_type == campaign.source)
        if captured_from is not None:
            stmt = stmt.where(Lead.captured_at >= captured_from)
        leads = list((await session.execute(stmt)).scalars())
        if not leads:
            return enrolled
        for lead in leads:
            if matches(campaign, lead):
                variant = choose_variant(lead.id, variants)
                enrolled += await _insert_enrollment(session, account, lead, campaign, variant, now)
        after_id = leads[-1].id


async def backfill_campaign(
    session: AsyncSession,
    account: Account,
    campaign_id: str,
    captured_from: dt.datetime | None,
    now: dt.datetime,
) -> BackfillOut:
    """The API's backfill: only into the account's running campaign."""
    campaign = await get_campaign(session, account.id, campaign_id)
    if campaign.status != CampaignStatus.ACTIVE or campaign.archived_at is not None:
        raise CampaignInactive("Activate the campaign before backfilling.")
    if campaign.ends_at is not None and campaign.ends_at <= now:
        # Its enrollments would be stopped at once, and a lead joins one campaign only.
        raise CampaignEnded("The campaign has ended: nothing to backfill.")
    return BackfillOut(enrolled=await backfill(session, account, campaign, captured_from, now))
