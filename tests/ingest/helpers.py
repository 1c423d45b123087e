"""Helpers for the ingestion tests alone (the shared ones are in tests/support/)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from leadflow.kit.db import Database
from leadflow.models import Event, Lead, LeadEvent
from tests.support.database import count


@dataclass(frozen=True)
class Counts:
    events: int
    leads: int
    lead_events: int


async def counts(db: Database) -> Counts:
    """Rows written by ingestion, read straight from the database."""
    return Counts(
        events=await count(db, Event),
        leads=await count(db, Lead),
        lead_events=await count(db, LeadEvent),
    )


async def assert_nothing_written(db: Database) -> None:
    assert await counts(db) == Counts(0, 0, 0)


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
