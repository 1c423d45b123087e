"""Which campaign a lead belongs to, which variant it gets, and when its first follow-up is due."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.counters import count_assigned
from leadflow.abtest.service import allowed_variants
from leadflow.kit.db import insert_for, table
from leadflow.kit.ids import new_id
from leadflow.lifecycle.rules import first_due
from leadflow.models.abtest import AbTest
from leadflow.models.accounts import Account
from leadflow.models.campaigns import Campaign, Variant
from leadflow.models.enrollments import Enrollment
from leadflow.models.leads import Lead
from leadflow.vocabulary import EnrollmentState


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


async def enroll_new_leads(
    session: AsyncSession, account: Account, leads: Sequence[Lead], now: dt.datetime
) -> dict[str, str]:
    """Enroll just-captured leads, each in the best running campaign that takes it, in one
    pass: the account's running campaigns, their variants and A/B tests read once, one
    insert for the enrollments. Returns ``{lead_id: campaign_id}`` of the leads enrolled."""
    if not leads:
        return {}
    # The running campaigns with their live variants (oldest first) and A/B tests, at once.
    running = (
        select(Campaign, Variant, AbTest)
        .join(Variant, and_(Variant.campaign_id == Campaign.id, Variant.archived_at.is_(None)))
        .outerjoin(AbTest, AbTest.campaign_id == Campaign.id)
        .where(Campaign.account_id == account.id, Campaign.is_running(now))
        .order_by(Variant.created_at, Variant.id)
    )
    by_id: dict[str, Campaign] = {}
    variants: dict[str, list[Variant]] = {}
    tests: dict[str, AbTest | None] = {}
    for campaign, variant, test in await session.execute(running):
        by_id[campaign.id] = campaign
        variants.setdefault(campaign.id, []).append(variant)
        tests[campaign.id] = test
    # Highest priority, then the most specific filters, then the oldest campaign.
    campaigns = sorted(
        by_id.values(), key=lambda c: (-c.priority, -specificity(c), c.created_at, c.id)
    )
    rows = []
    for lead in leads:
        best = next((c for c in campaigns if matches(c, lead)), None)
        if best is None:
            continue
        variant = choose_variant(lead.id, allowed_variants(tests.get(best.id), variants[best.id]))
        rows.append(_enrollment_row(account, lead, best, variant, now))
    enrolled: dict[str, str] = {}
    assigned: dict[str, dict[str, int]] = {}
    insert = insert_for(session)
    if rows:
        enrollments = table(Enrollment)
        stmt = (
            insert(enrollments)
            .on_conflict_do_nothing(index_elements=["lead_id"])
            .returning(enrollments.c.lead_id, enrollments.c.campaign_id, enrollments.c.variant_id)
        )
        for lead_id, campaign_id, variant_id in await session.execute(stmt, rows):
            enrolled[lead_id] = campaign_id
            per_variant = assigned.setdefault(campaign_id, {})
            per_variant[variant_id] = per_variant.get(variant_id, 0) + 1
    for campaign_id, counts in sorted(assigned.items()):
        await count_assigned(
            session, account_id=account.id, campaign_id=campaign_id, variant_counts=counts
        )
    return enrolled


def _enrollment_row(
    account: Account, lead: Lead, campaign: Campaign, variant: Variant, now: dt.datetime
) -> dict[str, object]:
    return {
        "id": new_id("enr"),
        "account_id": account.id,
        "lead_id": lead.id,
        "source_type": lead.source_type,
        "campaign_id": campaign.id,
        "variant_id": variant.id,
        "state": EnrollmentState.ACTIVE,
        "next_step": 1,
        "next_due_at": first_due(account, lead, variant),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
