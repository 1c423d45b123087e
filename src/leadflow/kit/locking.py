"""Transaction-scoped advisory locks: serialise work about one key until the transaction ends."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_key(session: AsyncSession, key: str) -> bool:
    """Take PostgreSQL's advisory lock on ``key`` for the rest of the transaction.

    Returns False on SQLite, which has no such lock: there a single writer already serialises
    writing transactions, and callers that must also order their *reads* write first.
    """
    return await lock_keys(session, [key])


async def lock_keys(session: AsyncSession, keys: Iterable[str]) -> bool:
    """``lock_key`` for many keys in one round trip, taken in sorted order so that two
    transactions locking overlapping sets cannot wait on each other in a cycle."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    ordered = sorted(set(keys))
    if ordered:
        # Volatile functions in the select list run after the sort, so the locks are taken
        # in key order.
        await session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(key, 0))"
                " FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS keys(key, position)"
                " ORDER BY position"
            ),
            {"keys": ordered},
        )
    return True
