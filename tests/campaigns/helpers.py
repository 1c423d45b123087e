"""Helpers for the campaign tests alone (the shared ones are in tests/support/)."""

from __future__ import annotations

from sqlalchemy import select

from leadflow.kit.db import Database
from leadflow.models import Enrollment


async def enrollment_of(db: Database, lead_id: str) -> Enrollment | None:
    async with db.session() as session:
        return (
            await session.execute(select(Enrollment).where(Enrollment.lead_id == lead_id))
        ).scalar_one_or_none()
