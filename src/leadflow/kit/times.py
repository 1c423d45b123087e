"""Timestamps as the API accepts them: with an offset, answered and stored in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    PlainValidator,
    TypeAdapter,
    WithJsonSchema,
)

EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def to_utc(value: dt.datetime) -> dt.datetime:
    """UTC, within 1970-2200: year 0001 or 9999 with an offset would overflow on the way to
    UTC or in date arithmetic later (delays, buckets), and no lead lives there."""
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError("timestamp must be between 1970 and 2200")
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_a_number(value: object) -> object:
    """Refuse what pydantic's lax mode would read as Unix seconds: the documented format is an
    RFC 3339 string, and ``0`` meaning 1970 is a client bug, not a date."""
    if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
        raise ValueError("must be an RFC 3339 date-time string with an offset, not a number")
    return value


UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(to_utc)]


_DATE_TIME: TypeAdapter[dt.datetime] = TypeAdapter(UtcDateTime)


def _day_or_date_time(value: object) -> dt.date | dt.datetime:
    """``YYYY-MM-DD`` is a calendar day; anything else must be a date-time with an offset."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD) or an RFC 3339 date-time") from None
        if not EARLIEST.year <= day.year < LATEST.year:
            raise ValueError("date must be between 1970 and 2200")
        return day
    return _DATE_TIME.validate_python(value)


# A query bound as people send it: a date (that day in the account's time zone) or an
# RFC 3339 date-time with an offset. Resolve it with ``bound``.
DayOrDateTime = Annotated[
    dt.date | dt.datetime,
    PlainValidator(_day_or_date_time),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]
DAY_BOUND = (
    "An RFC 3339 date-time with an offset, or a date (`2026-11-01`) meaning that day in the "
    "account's time zone"
)


def bound(value: dt.date | dt.datetime | None, timezone: str, *, end: bool) -> dt.datetime | None:
    """A range bound in UTC. A date is the start of that day in ``timezone`` for a start, and
    the start of the next day for an (exclusive) end, so ``from=D&to=D`` is the whole day D."""
    if value is None or isinstance(value, dt.datetime):
        return value
    day = value + dt.timedelta(days=1) if end else value
    try:
        zone: dt.tzinfo = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    # Clamped: the first day of 1970 east of UTC starts in 1969, which stores nothing anyway.
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    return min(max(start, EARLIEST), LATEST)
