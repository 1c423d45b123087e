"""A/B tests: per-variant results, the winner decision (exactly once), and who gets new leads."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.models import AbTest
from leadflow.abtest.schemas import AbTestSettings
from leadflow.abtest.statistics import probability_best
from leadflow.campaigns.models import Campaign, Variant
from leadflow.dispatch.models import Enrollment, Message
from leadflow.kit.clock import Clock
from leadflow.kit.codes import format_money
from leadflow.kit.db import Database
from leadflow.kit.errors import AppError, field_error
from leadflow.leads.models import Conversion
from leadflow.notifications import events
from leadflow.stats.models import StatsCounter
from leadflow.tracking.models import Visit

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
    if test is not None and test.state != "running":
        raise AppError(409, "ab_test_ended", "The A/B test has ended; its settings are final.")
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
            state="running",
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


def settings_of(test: AbTest | None) -> AbTestSettings | None:
    if test is None:
        return None
    return AbTestSettings(
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
    if test is None or test.state == "running":
        return variants
    keep = test.continue_variant_id
    if keep is None and test.keep_best and test.state == "decided":
        keep = test.winner_variant_id
    chosen = [v for v in variants if v.id == keep]
    return chosen or variants


@dataclass
class VariantMetrics:
    variant: Variant
    leads_assigned: int = 0
    followups: dict[int, int] = field(default_factory=dict)
    targeted: int = 0
    visitors: int = 0
    conversions: int = 0
    revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    @property
    def rate(self) -> float | None:
        return self.conversions / self.targeted if self.targeted else None


async def collect(
    session: AsyncSession, campaign_id: str, variants: list[Variant]
) -> list[VariantMetrics]:
    metrics = {v.id: VariantMetrics(v) for v in variants}
    assigned = await session.execute(
        select(Enrollment.variant_id, func.count())
        .where(Enrollment.campaign_id == campaign_id)
        .group_by(Enrollment.variant_id)
    )
    for variant_id, count in assigned:
        if variant_id in metrics:
            metrics[variant_id].leads_assigned = count
    counters = await session.execute(
        select(
            StatsCounter.variant_id,
            StatsCounter.step,
            func.sum(StatsCounter.followups_sent),
            func.sum(StatsCounter.leads_targeted),
        )
        .where(StatsCounter.campaign_id == campaign_id)
        .group_by(StatsCounter.variant_id, StatsCounter.step)
    )
    for variant_id, step, sent, targeted in counters:
        if variant_id in metrics and sent:
            metrics[variant_id].followups[step] = int(sent)
            metrics[variant_id].targeted += int(targeted or 0)
    visits = await session.execute(
        select(Visit.variant_id, func.count())
        .where(Visit.campaign_id == campaign_id)
        .group_by(Visit.variant_id)
    )
    for variant_id, count in visits:
        if variant_id in metrics:
            metrics[variant_id].visitors = count
    conversions = await session.execute(
        select(
            Conversion.variant_id, Conversion.currency, func.count(), func.sum(Conversion.amount)
        )
        .where(Conversion.campaign_id == campaign_id)
        .group_by(Conversion.variant_id, Conversion.currency)
    )
    for credited, code, count, total in conversions:
        if credited in metrics:
            metrics[credited].conversions += count
            if code and total is not None:
                metrics[credited].revenue[code] += Decimal(str(total))
    return [metrics[v.id] for v in variants]


async def _totals(session: AsyncSession, test: AbTest) -> dict[str, Decimal]:
    """Each variant's current total for the criterion, summed in the database."""
    key: Any
    value: Any
    conditions: list[Any]
    if test.criterion == "unique_visitors":
        key, value, conditions = (
            Visit.variant_id,
            func.count(),
            [Visit.campaign_id == test.campaign_id],
        )
    else:
        key, conditions = Conversion.variant_id, [Conversion.campaign_id == test.campaign_id]
        value = func.count()
        if test.criterion == "revenue":
            value = func.sum(Conversion.amount)
            conditions.append(Conversion.currency == test.currency)
    rows = await session.execute(select(key, value).where(*conditions).group_by(key))
    return {
        variant_id: Decimal(str(total or 0)) for variant_id, total in rows if variant_id is not None
    }


async def _reach_time(session: AsyncSession, test: AbTest, variant_id: str) -> dt.datetime | None:
    """When a variant that has reached the threshold reached it."""
    threshold = test.threshold or Decimal(0)
    stmt: Any
    if test.criterion == "unique_visitors":
        stmt = (
            select(Visit.first_at)
            .where(Visit.campaign_id == test.campaign_id, Visit.variant_id == variant_id)
            .order_by(Visit.first_at, Visit.id)
        )
    elif test.criterion == "conversions":
        stmt = (
            select(Conversion.converted_at)
            .where(Conversion.campaign_id == test.campaign_id, Conversion.variant_id == variant_id)
            .order_by(Conversion.converted_at, Conversion.id)
        )
    else:
        total = Decimal(0)
        rows = await session.stream(
            select(Conversion.converted_at, Conversion.amount)
            .where(
                Conversion.campaign_id == test.campaign_id,
                Conversion.variant_id == variant_id,
                Conversion.currency == test.currency,
            )
            .order_by(Conversion.converted_at, Conversion.id)
        )
        async for when, amount in rows:
            total += amount or Decimal(0)
            if total >= threshold:
                return when
        return None
    # The Nth visit or conversion, by time.
    nth = await session.execute(stmt.offset(int(threshold) - 1).limit(1))
    return nth.scalar_one_or_none()


def _describe_threshold(test: AbTest) -> str:
    if test.criterion == "revenue":
        return f"{format_money(test.threshold, test.currency)} {test.currency} revenue"
    amount = int(test.threshold or 0)
    if test.criterion == "conversions":
        return f"{amount} conversion{'' if amount == 1 else 's'}"
    return f"{amount} unique checkout visitor{'' if amount == 1 else 's'}"


async def results_at(
    session: AsyncSession, campaign_id: str, variants: list[Variant], until: dt.datetime
) -> list[VariantMetrics]:
    """Leads targeted and conversions per variant as they stood at ``until`` (the end of a
    time-range test), so activity after the end cannot change its outcome."""
    metrics = {v.id: VariantMetrics(v) for v in variants}
    targeted = await session.execute(
        select(Message.variant_id, func.count())
        .where(
            Message.campaign_id == campaign_id,
            Message.step == 1,
            Message.status.in_(("sent", "unknown")),
            Message.sent_at <= until,
        )
        .group_by(Message.variant_id)
    )
    for variant_id, count in targeted:
        if variant_id in metrics:
            metrics[variant_id].targeted = count
    converted = await session.execute(
        select(Conversion.variant_id, func.count())
        .where(Conversion.campaign_id == campaign_id, Conversion.converted_at <= until)
        .group_by(Conversion.variant_id)
    )
    for credited, count in converted:
        if credited in metrics:
            metrics[credited].conversions = count
    return [metrics[v.id] for v in variants]


async def _by_conversion_rate(
    test: AbTest, metrics: list[VariantMetrics], why: str
) -> tuple[str, str | None, str]:
    """(state, winner, reason) when the test ends on conversion rate."""
    probs = probability_best([(m.conversions, m.targeted) for m in metrics])
    if not any(m.targeted for m in metrics):
        return "inconclusive", None, f"{why}; no variant has sent a follow-up yet"
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
            "inconclusive",
            None,
            f"{why}; no variant reached {100 * test.min_confidence:.0f}% probability of being "
            f"best (best: {winner.variant.name} at {100 * probs[best]:.0f}%; {rate_text})",
        )
    return (
        "decided",
        winner.variant.id,
        f"{why}; variant {winner.variant.name} had the best conversion rate ({rate_text}; "
        f"{100 * probs[best]:.0f}% probability of being best)",
    )


async def evaluate(session: AsyncSession, campaign_id: str, now: dt.datetime) -> bool:
    """Decide the test if its criterion is met. Returns True only for the one call that wrote
    the decision, however many workers evaluate at the same time."""
    test = await get_test(session, campaign_id)
    if test is None or test.state != "running":
        return False
    variants = list(
        (
            await session.execute(
                select(Variant)
                .where(Variant.campaign_id == campaign_id, Variant.archived_at.is_(None))
                .order_by(Variant.created_at, Variant.id)
            )
        ).scalars()
    )
    if len(variants) < 2:
        return False
    outcome: tuple[str, str | None, str] | None = None
    if test.criterion != "time_range":
        totals = await _totals(session, test)
        threshold = test.threshold or Decimal(0)
        reached = []
        for index, variant in enumerate(variants):
            total = totals.get(variant.id, Decimal(0))
            if total < threshold:
                continue  # most evaluations stop here, without reading any rows
            when = await _reach_time(session, test, variant.id)
            if when is not None:
                reached.append((when, -total, index, variant))
        if reached:
            # First to reach the threshold; same instant: the higher total, then the older one.
            when, _, _, variant = min(reached, key=lambda r: (r[0], r[1], r[2]))
            outcome = (
                "decided",
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
        .where(AbTest.campaign_id == test.campaign_id, AbTest.state == "running")
        .values(**values)
        .returning(AbTest.campaign_id)
    )
    if written.scalar_one_or_none() is None:
        return False
    await session.refresh(test)
    await events.abtest_decided(session, test, now)
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
            state="running",
            created_at=now,
            updated_at=now,
        )
        session.add(test)
        await session.flush()
    if test.state == "decided":
        raise AppError(409, "ab_test_decided", "The A/B test already has a winner.")
    reason = f"variant {variant.name} was chosen by the merchant"
    states = ("running", "inconclusive")
    written = await session.execute(
        update(AbTest)
        .where(AbTest.campaign_id == campaign.id, AbTest.state.in_(states))
        .values(
            state="decided",
            winner_variant_id=variant.id,
            continue_variant_id=variant.id,
            decided_at=now,
            reason=reason,
            updated_at=now,
        )
        .returning(AbTest.campaign_id)
    )
    if written.scalar_one_or_none() is None:
        raise AppError(409, "ab_test_decided", "The A/B test already has a winner.")
    await session.refresh(test)
    await events.abtest_decided(session, test, now)
    return test


async def evaluate_running(db: Database, clock: Clock) -> int:
    """The worker job: evaluate every running test, each in its own transaction."""
    async with db.session() as session:
        campaign_ids = list(
            (
                await session.execute(
                    select(AbTest.campaign_id)
                    .join(Campaign, Campaign.id == AbTest.campaign_id)
                    .where(AbTest.state == "running", Campaign.archived_at.is_(None))
                )
            ).scalars()
        )
    decided = 0
    for campaign_id in campaign_ids:
        async with db.session() as session:
            decided += await evaluate(session, campaign_id, clock.now())
    return decided
