"""Timestamps as the API accepts them: with an offset, answered and stored in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

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


def _not_a_number(value: object) -> object:
    """Refuse what pydantic's lax mode would read as Unix seconds: the documented format is an
    RFC 3339 string, and ``0`` meaning 1970 is a client bug, not a date."""
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 date-time string with an offset, not a number")
    return value


UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(to_utc)]
