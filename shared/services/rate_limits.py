"""Per-process rate limiting: one set of token buckets per limit, keyed by owner (commands,
reads) or by client address (failed authentication). Each app instance keeps its own buckets
(README "Security" says what that means when the app scales out). Bounded in memory: the least
recently seen keys are forgotten first, which can only let a forgotten client start afresh."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from shared.domain.rate_limits import Bucket, Budget, Limit
from shared.errors import RateLimited

MAX_KEYS = 100_000  # per limit; about 100 bytes each


class RateLimiter:
    def __init__(self, budgets: dict[Limit, Budget], clock: Callable[[], float] = time.monotonic) -> None:
        self._budgets = budgets
        self._clock = clock
        self._buckets: dict[Limit, OrderedDict[str, Bucket]] = {limit: OrderedDict() for limit in budgets}
        self._lock = threading.Lock()

    def charge(self, limit: Limit, key: str) -> None:
        """Count one request against `key`'s budget; RateLimited when it has none left."""
        budget = self._budgets[limit]
        with self._lock:
            buckets = self._buckets[limit]
            bucket, wait = budget.take(buckets.get(key), self._clock())
            buckets[key] = bucket
            buckets.move_to_end(key)
            while len(buckets) > MAX_KEYS:
                buckets.popitem(last=False)
        if wait:
            raise RateLimited(
                f"too many requests; try again in {wait} s",
                {"limit": limit.value, "per_minute": budget.per_minute, "retry_after_seconds": wait},
                retry_after=wait,
            )
