"""A campaign's A/B test as the API shows it: per-variant results with their statistics, the
test's state, and the merchant's decision by hand."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest import service
from leadflow.abtest.metrics import VariantMetrics, collect
from leadflow.abtest.schemas import AbTestResult, VariantResult
from leadflow.abtest.statistics import probability_best, two_proportion_p_value, wilson_interval
from leadflow.kit.codes import format_money
from leadflow.kit.db import get_owned
from leadflow.kit.errors import field_error
from leadflow.models.abtest import AbTest
from leadflow.models.campaigns import Campaign, Variant
from leadflow.vocabulary import AbTestStatus


def result_view(
    campaign_id: str, test: AbTest | None, metrics: list[VariantMetrics]
) -> AbTestResult:
    probs = probability_best([(m.conversions, m.targeted) for m in metrics])
    first = metrics[0] if metrics else None
    results = []
    for index, m in enumerate(metrics):
        p_value = None
        if index > 0 and first is not None:
            p_value = two_proportion_p_value(
                first.conversions, first.targeted, m.conversions, m.targeted
            )
        results.append(
            VariantResult(
                variant_id=m.variant.id,
                name=m.variant.name,
                weight=m.variant.weight,
                leads_assigned=m.leads_assigned,
                followups_sent={str(step): n for step, n in sorted(m.followups.items())},
                targeted_leads=m.targeted,
                unique_visitors=m.visitors,
                conversions=m.conversions,
                conversion_rate=m.rate,
                conversion_rate_ci95=wilson_interval(m.conversions, m.targeted),
                revenue={c: format_money(a, c) or "0" for c, a in sorted(m.revenue.items())},
                probability_best=probs[index] if any(x.targeted for x in metrics) else None,
                p_value_vs_first=p_value,
            )
        )
    return AbTestResult(
        campaign_id=campaign_id,
        settings=service.settings_of(test),
        state=test.state if test else AbTestStatus.RUNNING,
        winner_variant_id=test.winner_variant_id if test else None,
        decided_at=test.decided_at if test else None,
        reason=test.reason if test else None,
        variants=results,
    )


async def _campaign(session: AsyncSession, account_id: str, campaign_id: str) -> Campaign:
    return await get_owned(session, Campaign, account_id, campaign_id, "campaign")


async def _live_variants(session: AsyncSession, campaign_id: str) -> list[Variant]:
    """The variants new leads may join, oldest first (the first is the p-value baseline)."""
    return list((await session.execute(Variant.live_of(campaign_id))).scalars())


async def _results(session: AsyncSession, campaign: Campaign) -> AbTestResult:
    test = await service.get_test(session, campaign.id)
    variants = await _live_variants(session, campaign.id)
    metrics = await collect(session, campaign.account_id, campaign.id, variants)
    return result_view(campaign.id, test, metrics)


async def campaign_results(
    session: AsyncSession, account_id: str, campaign_id: str
) -> AbTestResult:
    return await _results(session, await _campaign(session, account_id, campaign_id))


async def decide(
    session: AsyncSession, account_id: str, campaign_id: str, variant_id: str, now: dt.datetime
) -> AbTestResult:
    """The merchant ends the test with ``variant_id`` as the winner (409 once decided)."""
    campaign = await _campaign(session, account_id, campaign_id)
    variants = await _live_variants(session, campaign.id)
    variant = next((v for v in variants if v.id == variant_id), None)
    if variant is None:
        raise field_error("variant_id", "not a variant of this campaign")
    await service.decide_by_hand(session, campaign, variant, now)
    return await _results(session, campaign)
