"""Rate limits of the public capture endpoint: token buckets per IP address and per
account, kept in the API process (each replica limits on its own: with N replicas behind a
load balancer the effective limit is up to N times the configured one)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from leadflow.kit.errors import AppError

# Buckets kept before full ones are dropped (a full bucket is the same as no bucket).
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: dt.datetime


class TokenBuckets:
    """``per_minute`` requests a minute per key, in bursts of up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: dt.datetime) -> float:
        """Take one token; returns 0, or the seconds to wait when there is none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        elapsed = max((now - bucket.at).total_seconds(), 0.0)
        bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _prune(self, now: dt.datetime) -> None:
        for key, bucket in list(self._buckets.items()):
            refilled = bucket.tokens + (now - bucket.at).total_seconds() * self.rate
            if refilled >= self.capacity:
                del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: forget the oldest half
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].at)[: MAX_BUCKETS // 2]:
                del self._buckets[key]


class CaptureLimits:
    def __init__(self, per_ip: int, per_account: int) -> None:
        self.ip = TokenBuckets(per_ip)
        self.account = TokenBuckets(per_account)


def too_many(wait: float, headers: dict[str, str]) -> AppError:
    seconds = max(1, math.ceil(wait))
    return AppError(
        429,
        "rate_limited",
        f"Too many sign-ups; try again in {seconds} s.",
        headers={**headers, "Retry-After": str(seconds)},
    )
