"""The per-user API rate limit: a token bucket per authenticated user, in memory.

Each user's bucket holds up to ``burst`` requests and refills at ``per_minute`` a minute; a
request that finds it empty is answered 429 with the seconds until a token is back. Counted
per process: replicas behind one address each keep their own buckets.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
PRUNE_FLOOR = 1024


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, per_minute: int, burst: int, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self._buckets: dict[uuid.UUID, _Bucket] = {}
        self._prune_at = PRUNE_FLOOR

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: uuid.UUID) -> float | None:
        """Spend one token of ``key``'s bucket: None when there was one, else the seconds
        until there is."""
        if not self.enabled:
            return None
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget the buckets that have filled up again (a fresh one is the same)."""
        full_after = self.burst / self.rate
        self._buckets = {
            k: b for k, b in self._buckets.items() if now - b.updated < full_after
        }
        self._prune_at = max(PRUNE_FLOOR, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)
