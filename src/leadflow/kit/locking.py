"""Transaction-scoped advisory locks: serialise work about one key until the transaction ends."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_key(session: AsyncSession, key: str) -> bool:
    """Take PostgreSQL's advisory lock on ``key`` for the rest of the transaction.

    Returns False on SQLite, which has no such lock: there a single writer already serialises
    writing transactions, and callers that must also order their *reads* write first.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
    )
    return True
