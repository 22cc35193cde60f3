"""Per-key rate limiting: one token bucket per API key, in memory.

A key limited to ``N`` requests per minute may send a burst of ``N`` requests, then one every ``60/N``
seconds. Refusals carry the seconds until the next request would be allowed (for ``Retry-After``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by an id; thread-safe; idle buckets are forgotten."""

    MAX_BUCKETS = 10_000

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, per_minute: float) -> float:
        """Take one token for ``key``; returns 0.0 when allowed, else the seconds to wait."""
        now = self._clock()
        rate = per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.MAX_BUCKETS:
                    self._forget_full(now, rate)
                bucket = self._buckets[key] = _Bucket(tokens=per_minute, updated=now)
            bucket.tokens = min(per_minute, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate

    def peek(self, key: str, per_minute: float) -> float:
        """The seconds until ``key`` has a token (0.0 when it has one now), without taking it."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            rate = per_minute / 60.0
            tokens = min(per_minute, bucket.tokens + (self._clock() - bucket.updated) * rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def _forget_full(self, now: float, rate: float) -> None:
        """Drop buckets idle long enough to be full again (they would start full anyway)."""
        idle = [k for k, b in self._buckets.items() if now - b.updated > 60.0]
        for k in idle:
            del self._buckets[k]
        if len(self._buckets) >= self.MAX_BUCKETS:
            self._buckets.clear()
