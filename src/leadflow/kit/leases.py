"""Claiming due work among any number of workers, each row by exactly one of them.

Candidates are locked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL: workers never wait on
each other's rows), then claimed by a conditional ``UPDATE`` that re-checks they are still
due. The update is the claim itself, so the same code is also correct on SQLite, which has
no row locks but a single writer. A lease (``lease_until``, ``lease_token``) lets another
worker take a claim over once a crashed worker's lease has expired.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


def lease_free(model: Any, now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    """Rows nobody holds: never leased, or their lease has expired."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


def lease(now: dt.datetime, duration: dt.timedelta, token: str) -> dict[str, Any]:
    """The values that claim rows for ``token`` until ``now + duration``."""
    return {"lease_until": now + duration, "lease_token": token}


def release(row: Any) -> None:
    """Give up the lease held on a loaded row."""
    row.lease_until = None
    row.lease_token = None


async def claim_due(
    session: AsyncSession,
    candidates: Select[Any],
    *,
    model: Any,
    still_due: Iterable[ColumnElement[bool]],
    claim: Mapping[str, Any],
    returning: Sequence[InstrumentedAttribute[Any]] = (),
    locked: bool = False,
    params: Mapping[str, Any] | None = None,
) -> list[Row[Any]]:
    """Claim the rows ``candidates`` selects (their ids, ordered and limited) that are still
    due by ``still_due`` when updated, setting ``claim`` on them. Returns ``(id, *returning)``
    per claimed row. ``locked``: ``candidates`` takes its row locks itself (a query that
    cannot carry ``FOR UPDATE`` at its top, such as a union); ``params``: its parameters."""
    if not locked:
        candidates = candidates.with_for_update(of=model, skip_locked=True)
    ids = list((await session.execute(candidates, dict(params or {}))).scalars())
    if not ids:
        return []
    claimed = await session.execute(
        update(model)
        .where(model.id.in_(ids), *still_due)
        .values(**claim)
        .returning(model.id, *returning)
    )
    return list(claimed)


async def release_held(
    session: AsyncSession, model: Any, ids: Iterable[str], token: str, **values: Any
) -> None:
    """Give up the leases ``token`` still holds on ``ids`` (others may have taken some over),
    setting ``values`` on them too."""
    await session.execute(
        update(model)
        .where(model.id.in_(list(ids)), model.lease_token == token)
        .values(lease_until=None, lease_token=None, **values)
    )
