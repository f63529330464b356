"""Readiness, checked at most once per interval: `GET /ready` is anonymous, and each check is a
Table Storage request, so a flood of probes (or of anyone) would otherwise be a flood of table
requests. A probe learns of a change within the interval; concurrent probes share one check."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

INTERVAL_SECONDS = 5.0
log = logging.getLogger("dev8.readiness")


class Readiness:
    def __init__(
        self,
        check: Callable[[], None],
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check  # raises when a dependency is unreachable
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._failure: Exception | None = None

    def failure(self) -> Exception | None:
        """None when ready; else what the last check raised. A check is made when the last is an
        interval old; while one is under way, others get the last answer rather than wait (a
        check against an unreachable service can take its retries' time, and every waiter
        would hold a worker thread), unless there is none yet."""
        if not self._lock.acquire(blocking=self._checked_at is None):
            return self._failure
        try:
            if self._checked_at is None or self._clock() - self._checked_at >= self._interval:
                try:
                    self._check()
                    self._failure = None
                except Exception as exc:
                    # Said once per check, not per probe: during an outage anyone's probes would
                    # otherwise each add a warning to the logs (and to what they cost).
                    log.warning("not ready: table storage unreachable (%s)", type(exc).__name__)
                    self._failure = exc
                self._checked_at = self._clock()
            return self._failure
        finally:
            self._lock.release()
