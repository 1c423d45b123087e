"""Per-variant figures of an A/B test, read from the database (summed there, not in Python)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.abtest.counters import variant_counts
from leadflow.models.abtest import AbTest
from leadflow.models.campaigns import Variant
from leadflow.models.enrollments import Message
from leadflow.models.leads import Conversion
from leadflow.models.stats import StatsCounter
from leadflow.models.tracking import Visit
from leadflow.vocabulary import MAYBE_SENT


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
    session: AsyncSession, account_id: str, campaign_id: str, variants: list[Variant]
) -> list[VariantMetrics]:
    """Current figures per variant, from counters kept in the writing transactions: the
    per-variant split counters (leads assigned, unique visitors) and the hourly stats counters
    (follow-ups, leads targeted, conversions, revenue). Two reads whose size grows with the
    hours the campaign has been sending, never with its leads, messages, visits or
    conversions."""
    metrics = {v.id: VariantMetrics(v) for v in variants}
    for variant_id, (assigned, visitors) in (
        await variant_counts(session, account_id, campaign_id)
    ).items():
        if variant_id in metrics:
            metrics[variant_id].leads_assigned = assigned
            metrics[variant_id].visitors = visitors
    counters = await session.execute(
        select(
            StatsCounter.variant_id,
            StatsCounter.step,
            StatsCounter.currency,
            func.sum(StatsCounter.followups_sent),
            func.sum(StatsCounter.leads_targeted),
            func.sum(StatsCounter.conversions),
            func.sum(StatsCounter.revenue),
        )
        .where(StatsCounter.account_id == account_id, StatsCounter.campaign_id == campaign_id)
        .group_by(StatsCounter.variant_id, StatsCounter.step, StatsCounter.currency)
    )
    for variant_id, step, code, sent, targeted, converted, total in counters:
        m = metrics.get(variant_id)
        if m is None:
            continue
        if sent:
            m.followups[step] = m.followups.get(step, 0) + int(sent)
        m.targeted += int(targeted or 0)
        m.conversions += int(converted or 0)
        if code and converted:
            m.revenue[code] += Decimal(str(total or 0))
    return [metrics[v.id] for v in variants]


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
            Message.status.in_(MAYBE_SENT),
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


async def criterion_totals(session: AsyncSession, test: AbTest) -> dict[str, Decimal]:
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


async def reach_time(session: AsyncSession, test: AbTest, variant_id: str) -> dt.datetime | None:
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
