from __future__ import annotations

from fastapi import APIRouter

from leadflow.abtest import results
from leadflow.abtest.schemas import AbTestResult, DecideIn
from leadflow.api.deps import ClockDep, CurrentAccount, SessionDep
from leadflow.kit.errors import error_responses

router = APIRouter(tags=["a/b tests"])


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
    return await results.campaign_results(session, account.id, campaign_id)


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
    return await results.decide(session, account.id, campaign_id, body.variant_id, clock.now())
