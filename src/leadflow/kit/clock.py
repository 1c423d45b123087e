"""One source of time, so tests can move it without sleeping."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = when

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        self._now += delta if delta is not None else dt.timedelta(**kwargs)
        return self._now
