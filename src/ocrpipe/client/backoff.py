"""Exponential back-off with full jitter, for uploads to a server that is down and for result commands.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the retries of many clinic PCs
that lost the same server at the same moment, so they do not all knock at once when it comes back. A floor
keeps a retry from being scheduled immediately.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """``delay(n)`` for the n-th consecutive failure (n ≥ 1): uniform in [floor, min(cap, base·2^(n-1))]."""

    base_s: float = 1.0
    cap_s: float = 60.0
    floor_s: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got base {self.base_s}, cap {self.cap_s}")
        if not 0 <= self.floor_s <= self.base_s:
            raise ValueError(f"need 0 <= floor_s <= base_s, got floor {self.floor_s}")

    def ceiling(self, failures: int) -> float:
        """The largest delay after ``failures`` consecutive failures (no jitter)."""
        if failures < 1:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 62))

    def delay(self, failures: int) -> float:
        """A jittered delay after ``failures`` consecutive failures (0 when there was none)."""
        top = self.ceiling(failures)
        if top == 0.0:
            return 0.0
        return self.rng.uniform(min(self.floor_s, top), top)
