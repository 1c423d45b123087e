"""Per-variant counters of a campaign's split: leads assigned and unique checkout visitors.

Call these inside the transaction that creates the rows they count (enrollments, first
visits), so the counters never drift and A/B results read a few rows instead of scanning.
Each campaign and variant has ``SHARDS`` rows and a transaction adds to one of them at
random: concurrent enrollments into the same variant then rarely wait on one row lock, and
readers sum at most ``SHARDS`` rows per variant.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.db import insert_for
from leadflow.models.abtest import AbTestCounter

SHARDS = 16


async def _add(
    session: AsyncSession,
    *,
    account_id: str,
    campaign_id: str,
    counts: Mapping[str, tuple[int, int]],
) -> None:
    rows = [
        {
            "campaign_id": campaign_id,
            "variant_id": variant_id,
            "shard": random.randrange(SHARDS),  # spreads writes; not a secret
            "account_id": account_id,
            "leads_assigned": assigned,
            "visitors": visitors,
        }
        # Sorted: concurrent transactions take the rows' locks in the same order.
        for variant_id, (assigned, visitors) in sorted(counts.items())
        if assigned or visitors
    ]
    if not rows:
        return
    insert = insert_for(session)
    stmt = insert(AbTestCounter).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign_id", "variant_id", "shard"],
        set_={
            "leads_assigned": AbTestCounter.leads_assigned + stmt.excluded.leads_assigned,
            "visitors": AbTestCounter.visitors + stmt.excluded.visitors,
        },
    )
    await session.execute(stmt)


async def count_assigned(
    session: AsyncSession,
    *,
    account_id: str,
    campaign_id: str,
    variant_counts: Mapping[str, int],
) -> None:
    """Add ``variant_counts`` (variant id -> leads just enrolled in it) to the campaign's
    counters, in one statement however many variants."""
    await _add(
        session,
        account_id=account_id,
        campaign_id=campaign_id,
        counts={variant_id: (n, 0) for variant_id, n in variant_counts.items()},
    )


async def count_visitor(
    session: AsyncSession, *, account_id: str, campaign_id: str, variant_id: str
) -> None:
    """A lead reached the checkout from this variant for the first time."""
    await _add(session, account_id=account_id, campaign_id=campaign_id, counts={variant_id: (0, 1)})


async def variant_counts(
    session: AsyncSession, account_id: str, campaign_id: str
) -> dict[str, tuple[int, int]]:
    """variant id -> (leads assigned, unique visitors), summed over at most ``SHARDS`` rows
    per variant."""
    rows = await session.execute(
        select(
            AbTestCounter.variant_id,
            func.sum(AbTestCounter.leads_assigned),
            func.sum(AbTestCounter.visitors),
        )
        .where(AbTestCounter.account_id == account_id, AbTestCounter.campaign_id == campaign_id)
        .group_by(AbTestCounter.variant_id)
    )
    return {variant_id: (int(a or 0), int(v or 0)) for variant_id, a, v in rows}
