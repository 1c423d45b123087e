"""When a follow-up may go out: minimum delay, frequency cap and the lead's local send window."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo


def _hhmm(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def in_window(local: dt.datetime, start: dt.time, end: dt.time) -> bool:
    now = local.time().replace(tzinfo=None)
    if start < end:
        return start <= now < end
    return now >= start or now < end  # spans midnight


def next_allowed(when: dt.datetime, window: dict[str, Any] | None, timezone: str) -> dt.datetime:
    """``when`` if it lies in the window, else the window's next opening (an aware UTC instant).

    Computed on the local wall clock, so "09:00" stays 09:00 across a DST change.
    """
    if not window:
        return when
    zone = ZoneInfo(timezone)
    start, end = _hhmm(window["start"]), _hhmm(window["end"])
    local = when.astimezone(zone)
    if in_window(local, start, end):
        return when
    day = local.date()
    if local.time().replace(tzinfo=None) >= start:
        day += dt.timedelta(days=1)
    opening = dt.datetime.combine(day, start, tzinfo=zone)
    # A wall-clock time skipped by a DST jump resolves to the first instant after it.
    return max(opening.astimezone(dt.UTC), when)


def retry_delay(attempt: int, base: float, cap: float) -> dt.timedelta:
    """Exponential backoff: base, 2*base, 4*base, ... capped."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))
