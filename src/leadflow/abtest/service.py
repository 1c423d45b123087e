"""A/B tests: per-variant results, the winner decision (exactly once), and who gets new leads."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.errors import AbTestDecided, AbTestEnded
from leadflow.abtest.metrics import (
    VariantMetrics,
    criterion_totals,
    reach_time,
    results_at,
)
from leadflow.abtest.schemas import AbTestSettings, AbTestSettingsOut
from leadflow.abtest.statistics import probability_best
from leadflow.kit.clock import Clock
from leadflow.kit.codes import format_money
from leadflow.kit.db import Database
from leadflow.kit.errors import field_error
from leadflow.kit.metrics import AB_DECISIONS, count_after_commit
from leadflow.models.abtest import AbTest
from leadflow.models.campaigns import Campaign, Variant
from leadflow.notifications import events
from leadflow.vocabulary import AbTestStatus

log = logging.getLogger("leadflow.abtest")


async def get_test(session: AsyncSession, campaign_id: str) -> AbTest | None:
    return await session.get(AbTest, campaign_id)


async def tests_for(session: AsyncSession, campaign_ids: list[str]) -> list[AbTest]:
    if not campaign_ids:
        return []
    rows = await session.execute(select(AbTest).where(AbTest.campaign_id.in_(campaign_ids)))
    return list(rows.scalars())


async def save_settings(
    session: AsyncSession,
    campaign: Campaign,
    settings: AbTestSettings | None,
    live_variant_ids: list[str],
    now: dt.datetime,
) -> AbTest | None:
    """Create, change or (with None) remove the campaign's test settings while it runs."""
    test = await get_test(session, campaign.id)
    if test is not None and test.state != AbTestStatus.RUNNING:
        raise AbTestEnded
    if settings is None:
        if test is not None:
            await session.delete(test)
        return None
    if settings.continue_variant_id and settings.continue_variant_id not in live_variant_ids:
        raise field_error("ab_test.continue_variant_id", "not a variant of this campaign")
    values = settings.model_dump()
    if test is None:
        test = AbTest(
            campaign_id=campaign.id,
            account_id=campaign.account_id,
            state=AbTestStatus.RUNNING,
            created_at=now,
            **values,
        )
        session.add(test)
    else:
        for key, value in values.items():
            setattr(test, key, value)
    test.updated_at = now
    await session.flush()
    return test


def _plain(value: Decimal) -> Decimal:
    """``50.0000`` → ``50``, ``12.5000`` → ``12.5`` (``normalize()`` alone gives ``5E+1``)."""
    normalized = value.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def settings_of(test: AbTest | None) -> AbTestSettingsOut | None:
    if test is None:
        return None
    return AbTestSettingsOut(
        criterion=test.criterion,
        threshold=_plain(test.threshold) if test.threshold is not None else None,
        currency=test.currency,
        ends_at=test.ends_at,
        keep_best=test.keep_best,
        continue_variant_id=test.continue_variant_id,
        min_confidence=test.min_confidence,
    )


def allowed_variants(test: AbTest | None, variants: list[Variant]) -> list[Variant]:
    """Which variants new leads may join: all, or only the one kept after the test."""
    if test is None or test.state == AbTestStatus.RUNNING:
        return variants
    keep = test.continue_variant_id
    if keep is None and test.keep_best and test.state == AbTestStatus.DECIDED:
        keep = test.winner_variant_id
    chosen = [v for v in variants if v.id == keep]
    return chosen or variants


def _describe_threshold(test: AbTest) -> str:
    if test.criterion == "revenue":
        return f"{format_money(test.threshold, test.currency)} {test.currency} revenue"
    amount = int(test.threshold or 0)
    if test.criterion == "conversions":
        return f"{amount} conversion{'' if amount == 1 else 's'}"
    return f"{amount} unique checkout visitor{'' if amount == 1 else 's'}"


async def _by_conversion_rate(
    test: AbTest, metrics: list[VariantMetrics], why: str
) -> tuple[str, str | None, str]:
    """(state, winner, reason) when the test ends on conversion rate."""
    probs = probability_best([(m.conversions, m.targeted) for m in metrics])
    if not any(m.targeted for m in metrics):
        return AbTestStatus.INCONCLUSIVE, None, f"{why}; no variant has sent a follow-up yet"
    # Best rate; ties go to the higher probability of being best, then the older variant.
    # Probabilities are compared rounded: identical results have identical probabilities,
    # but the closed form's floating-point noise (0.4999…97 vs 0.5000…03) must not pick one.
    order = sorted(
        range(len(metrics)),
        key=lambda i: (-(metrics[i].rate or 0.0), -round(probs[i], 9), i),
    )
    best = order[0]
    winner = metrics[best]
    rate_text = ", ".join(f"{m.variant.name} {100 * (m.rate or 0):.1f}%" for m in metrics)
    if test.min_confidence is not None and probs[best] < test.min_confidence:
        return (
            AbTestStatus.INCONCLUSIVE,
            None,
            f"{why}; no variant reached {100 * test.min_confidence:.0f}% probability of being "
            f"best (best: {winner.variant.name} at {100 * probs[best]:.0f}%; {rate_text})",
        )
    return (
        AbTestStatus.DECIDED,
        winner.variant.id,
        f"{why}; variant {winner.variant.name} had the best conversion rate ({rate_text}; "
        f"{100 * probs[best]:.0f}% probability of being best)",
    )


async def evaluate(session: AsyncSession, campaign_id: str, now: dt.datetime) -> bool:
    """Decide the test if its criterion is met. Returns True only for the one call that wrote
    the decision, however many workers evaluate at the same time."""
    test = await get_test(session, campaign_id)
    if test is None or test.state != AbTestStatus.RUNNING:
        return False
    variants = list((await session.execute(Variant.live_of(campaign_id))).scalars())
    if len(variants) < 2:
        return False
    outcome: tuple[str, str | None, str] | None = None
    if test.criterion != "time_range":
        totals = await criterion_totals(session, test)
        threshold = test.threshold or Decimal(0)
        reached = []
        for index, variant in enumerate(variants):
            total = totals.get(variant.id, Decimal(0))
            if total < threshold:
                continue  # most evaluations stop here, without reading any rows
            when = await reach_time(session, test, variant.id)
            if when is not None:
                reached.append((when, -total, index, variant))
        if reached:
            # First to reach the threshold; same instant: the higher total, then the older one.
            when, _, _, variant = min(reached, key=lambda r: (r[0], r[1], r[2]))
            outcome = (
                AbTestStatus.DECIDED,
                variant.id,
                f"variant {variant.name} reached {_describe_threshold(test)} first",
            )
    if outcome is None and test.ends_at is not None and now >= test.ends_at:
        metrics = await results_at(session, campaign_id, variants, test.ends_at)
        ended = f"the test ended at {test.ends_at.isoformat().replace('+00:00', 'Z')}"
        outcome = await _by_conversion_rate(test, metrics, ended)
    if outcome is None:
        return False
    state, winner, reason = outcome
    return await _write_outcome(session, test, state, winner, reason, now)


async def _write_outcome(
    session: AsyncSession,
    test: AbTest,
    state: str,
    winner: str | None,
    reason: str,
    now: dt.datetime,
    *,
    continue_variant_id: str | None = None,
) -> bool:
    values: dict[str, object] = {
        "state": state,
        "winner_variant_id": winner,
        "decided_at": now,
        "reason": reason,
        "updated_at": now,
    }
    if continue_variant_id is not None:
        values["continue_variant_id"] = continue_variant_id
    # The conditional update is the decision: only one transaction can move it off "running".
    written = await session.execute(
        update(AbTest)
        .where(AbTest.campaign_id == test.campaign_id, AbTest.state == AbTestStatus.RUNNING)
        .values(**values)
        .returning(AbTest.campaign_id)
    )
    if written.scalar_one_or_none() is None:
        return False
    await session.refresh(test)
    await events.abtest_decided(session, test, now)
    count_after_commit(session, AB_DECISIONS.labels(state, "worker"))
    log.info("A/B test of campaign %s: %s (%s)", test.campaign_id, state, reason)
    return True


async def decide_by_hand(
    session: AsyncSession, campaign: Campaign, variant: Variant, now: dt.datetime
) -> AbTest:
    """The merchant picks the variant to continue; new leads go only to it from now on."""
    test = await get_test(session, campaign.id)
    if test is None:
        test = AbTest(
            campaign_id=campaign.id,
            account_id=campaign.account_id,
            criterion="time_range",
            ends_at=now,
            keep_best=False,
            state=AbTestStatus.RUNNING,
            created_at=now,
            updated_at=now,
        )
        session.add(test)
        await session.flush()
    if test.state == AbTestStatus.DECIDED:
        raise AbTestDecided
    reason = f"variant {variant.name} was chosen by the merchant"
    states = (AbTestStatus.RUNNING, AbTestStatus.INCONCLUSIVE)
    written = await session.execute(
        update(AbTest)
        .where(AbTest.campaign_id == campaign.id, AbTest.state.in_(states))
        .values(
            state=AbTestStatus.DECIDED,
            winner_variant_id=variant.id,
            continue_variant_id=variant.id,
            keep_best=False,  # the chosen variant replaces keep_best: the settings allow one
            decided_at=now,
            reason=reason,
            updated_at=now,
        )
        .returning(AbTest.campaign_id)
    )
    if written.scalar_one_or_none() is None:
        raise AbTestDecided
    await session.refresh(test)
    await events.abtest_decided(session, test, now)
    count_after_commit(session, AB_DECISIONS.labels(AbTestStatus.DECIDED, "merchant"))
    return test


async def evaluate_running(db: Database, clock: Clock) -> int:
    """The worker job: evaluate every running test, each in its own transaction."""
    async with db.session() as session:
        campaign_ids = list(
            (
                await session.execute(
                    select(AbTest.campaign_id)
                    .join(Campaign, Campaign.id == AbTest.campaign_id)
                    .where(AbTest.state == AbTestStatus.RUNNING, Campaign.archived_at.is_(None))
                )
            ).scalars()
        )
    decided = 0
    for campaign_id in campaign_ids:
        async with db.session() as session:
            decided += await evaluate(session, campaign_id, clock.now())
    return decided
