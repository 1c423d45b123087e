"""Identifiers: ULID layout (48-bit milliseconds, 80 random bits) in Crockford base32."""

from __future__ import annotations

import time

from leadflow.kit.ids import _ALPHABET, new_id


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + _ALPHABET.index(char)
    return value


def test_an_id_is_its_prefix_and_26_base32_digits_carrying_the_time():
    before = time.time_ns() // 1_000_000
    identifier = new_id("lead")
    after = time.time_ns() // 1_000_000
    prefix, body = identifier.split("_")
    assert prefix == "lead"
    assert len(body) == 26 and set(body) <= set(_ALPHABET)
    assert body[0] in "01234567"  # 128 bits in 130: the top two are zero
    assert before <= _decode(body) >> 80 <= after


def test_ids_made_later_sort_later():
    first = new_id("evt")
    time.sleep(0.002)
    assert new_id("evt") > first
    assert len({new_id("evt") for _ in range(10_000)}) == 10_000
