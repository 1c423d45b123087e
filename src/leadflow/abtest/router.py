from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest import service
from leadflow.abtest.metrics import collect
from leadflow.abtest.schemas import AbTestResult, DecideIn, VariantResult
from leadflow.abtest.statistics import (
    probability_best,
    two_proportion_p_value,
    wilson_interval,
)
from leadflow.campaigns.service import get_campaign, live_variants
from leadflow.deps import ClockDep, CurrentAccount, SessionDep
from leadflow.kit.codes import format_money
from leadflow.kit.errors import error_responses, field_error

router = APIRouter(tags=["a/b tests"])


async def _result(session: AsyncSession, campaign_id: str, account_id: str) -> AbTestResult:
    campaign = await get_campaign(session, account_id, campaign_id)
    test = await service.get_test(session, campaign.id)
    variants = await live_variants(session, campaign.id)
    metrics = await collect(session, campaign.id, variants)
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
        campaign_id=campaign.id,
        settings=service.settings_of(test),
        state=test.state if test else "running",
        winner_variant_id=test.winner_variant_id if test else None,
        decided_at=test.decided_at if test else None,
        reason=test.reason if test else None,
        variants=results,
    )


@router.get(
    "/v1/campaigns/{campaign_id}/ab-test",
    summary="A/B test results per variant",
    response_model=AbTestResult,
    responses=error_responses(401, 404),
)
async def ab_test(campaign_id: str, account: CurrentAccount, session: SessionDep) -> AbTestResult:
    """Per variant: leads assigned, follow-ups per step, unique checkout visitors, conversions,
    conversion rate (conversions / leads that got a follow-up) with its 95% Wilson interval,
    revenue per currency, the posterior probability of converting best, and a two-proportion
    z-test p-value against the first variant. Plus the test's state and, once decided, the
    winner and why."""
    return await _result(session, campaign_id, account.id)


@router.post(
    "/v1/campaigns/{campaign_id}/ab-test/decide",
    summary="Pick the variant to continue by hand",
    response_model=AbTestResult,
    responses=error_responses(401, 404, 409, 422),
)
async def decide(
    campaign_id: str,
    body: DecideIn,
    account: CurrentAccount,
    session: SessionDep,
    clock: ClockDep,
) -> AbTestResult:
    """Ends the test with this variant as the winner: new leads go only to it. Refused (409)
    once the test already has a winner."""
    campaign = await get_campaign(session, account.id, campaign_id)
    variants = await live_variants(session, campaign.id)
    variant = next((v for v in variants if v.id == body.variant_id), None)
    if variant is None:
        raise field_error("variant_id", "not a variant of this campaign")
    await service.decide_by_hand(session, campaign, variant, clock.now())
    return await _result(session, campaign_id, account.id)
