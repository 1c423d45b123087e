"""Opaque, time-ordered identifiers (ULID layout, with a readable prefix)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two base32 digits: 13 look-ups encode an id (ids are made for
# every row of a batch, so this is a hot path).
_PAIRS = [_ALPHABET[n >> 5] + _ALPHABET[n & 31] for n in range(1024)]


def new_id(prefix: str) -> str:
    """``<prefix>_`` + 26 Crockford base32 chars: 48-bit milliseconds + 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    pairs = _PAIRS
    return f"{prefix}_" + "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])
