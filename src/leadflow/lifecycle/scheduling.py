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
    return max(_first_instant_at_or_after(day, start, zone), when)


def _first_instant_at_or_after(day: dt.date, start: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The first UTC instant whose wall time on ``day`` is ``start`` or later. When ``start``
    falls in a gap skipped by a DST jump (02:30 on a spring-forward night), that is the moment
    the clocks jump (03:00), not the shifted 03:30 plain conversion would give."""
    wall = dt.datetime.combine(day, start)
    later = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if later.astimezone(zone).replace(tzinfo=None) == wall:
        return later  # the time exists (fold=0 is the first of two during a fall-back)
    earlier = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    # The jump lies between the two readings of the missing time: search it by the minute.
    instant = earlier
    while instant < later and instant.astimezone(zone).replace(tzinfo=None) < wall:
        instant += dt.timedelta(minutes=1)
    return instant


def retry_delay(attempt: int, base: float, cap: float) -> dt.timedelta:
    """Exponential backoff: base, 2*base, 4*base, ... capped."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))
