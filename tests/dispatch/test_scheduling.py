"""The send window on the lead's wall clock, including the nights the clocks change."""

from __future__ import annotations

import datetime as dt

from leadflow.lifecycle.scheduling import next_allowed, retry_delay

BERLIN = "Europe/Berlin"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_inside_the_window_is_now():
    when = utc(2026, 1, 15, 12, 0)  # 13:00 in Berlin
    assert next_allowed(when, {"start": "09:00", "end": "20:00"}, BERLIN) == when


def test_before_and_after_the_window():
    window = {"start": "09:00", "end": "20:00"}
    assert next_allowed(utc(2026, 1, 15, 5, 0), window, BERLIN) == utc(2026, 1, 15, 8, 0)
    assert next_allowed(utc(2026, 1, 15, 19, 30), window, BERLIN) == utc(2026, 1, 16, 8, 0)


def test_window_spanning_midnight():
    window = {"start": "22:00", "end": "06:00"}
    assert next_allowed(utc(2026, 1, 15, 23, 0), window, BERLIN) == utc(2026, 1, 15, 23, 0)
    assert next_allowed(utc(2026, 1, 15, 12, 0), window, BERLIN) == utc(2026, 1, 15, 21, 0)


def test_opening_in_the_hour_skipped_in_spring_is_when_the_clocks_jump():
    # 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 never happens.
    when = utc(2026, 3, 28, 23, 0)
    assert next_allowed(when, {"start": "02:30", "end": "20:00"}, BERLIN) == utc(2026, 3, 29, 1, 0)


def test_opening_in_the_hour_repeated_in_autumn_is_the_first_one():
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, first at 00:30 UTC.
    when = utc(2026, 10, 24, 22, 0)
    window = {"start": "02:30", "end": "20:00"}
    assert next_allowed(when, window, BERLIN) == utc(2026, 10, 25, 0, 30)


def test_nine_oclock_stays_nine_oclock_across_the_change():
    window = {"start": "09:00", "end": "20:00"}
    assert next_allowed(utc(2026, 3, 28, 20, 0), window, BERLIN) == utc(2026, 3, 29, 7, 0)
    assert next_allowed(utc(2026, 10, 24, 20, 0), window, BERLIN) == utc(2026, 10, 25, 8, 0)


def test_retry_delay_doubles_up_to_the_cap():
    delays = [retry_delay(n, 30, 900).total_seconds() for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 900, 900]
