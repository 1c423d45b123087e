"""ISO 8601 durations (``PT2H``, ``P1D``, ``P1DT30M``) <-> ``timedelta``.

Only fixed-length units are accepted: years and months have no fixed length, so a
follow-up delay in months would be ambiguous.
"""

from __future__ import annotations

import datetime as dt
import re

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def parse_duration(text: str) -> dt.timedelta:
    match = _PATTERN.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration with weeks, days, hours, minutes or seconds "
            "(e.g. PT2H, P1D, P1DT30M)"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    return dt.timedelta(**parts)


def format_duration(delta: dt.timedelta) -> str:
    total = int(delta.total_seconds())
    if total < 0:
        raise ValueError("negative durations are not supported")
    if total == 0:
        return "PT0S"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P"
    if days:
        out += f"{days}D"
    if hours or minutes or seconds:
        out += "T"
        if hours:
            out += f"{hours}H"
        if minutes:
            out += f"{minutes}M"
        if seconds:
            out += f"{seconds}S"
    return out
