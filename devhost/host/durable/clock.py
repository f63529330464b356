"""Clocks for the durable engine.

Durable timers fire when the engine's clock passes their ``FireAt``. The real host uses wall-clock
time; tests use a ``ManualClock`` so timers fire instantly and deterministically when the test
advances time, and no test ever sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class TimerSource(Protocol):
    """Something that owns durable timers (the engine); a ManualClock asks it for deadlines."""

    def next_timer_at(self) -> datetime | None: ...

    def on_clock_changed(self) -> None: ...


class EngineClock(Protocol):
    """The engine's notion of time: always timezone-aware UTC."""

    # True when time passes by itself (the engine may sleep until a timer is due).
    realtime: bool

    def now(self) -> datetime: ...

    def attach(self, source: TimerSource) -> None:
        """Register a timer owner; a clock that can jump must tell it when time changes."""
        ...


class RealClock:
    """Wall-clock UTC time. Timers wait real time (the engine's driver sleeps until the deadline)."""

    realtime = True

    def now(self) -> datetime:
        return datetime.now(UTC)

    def attach(self, source: TimerSource) -> None:
        # Real time never jumps, so the driver's own timed waits are enough.
        return None


class ManualClock:
    """A clock that only moves when told to; durable timers fire as soon as time passes them."""

    realtime = False

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()
        self._sources: list[TimerSource] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def attach(self, source: TimerSource) -> None:
        with self._lock:
            self._sources.append(source)

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` and let attached engines fire due timers."""
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += delta
            now = self._now
        self._notify()
        return now

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (never backwards)."""
        when = when.astimezone(UTC)
        with self._lock:
            if when < self._now:
                raise ValueError("time only moves forward")
            self._now = when
        self._notify()
        return when

    def advance_to_next_timer(self) -> datetime | None:
        """Jump to the earliest pending durable timer of any attached engine.

        Returns the new time, or None when no timer is pending (time does not move then).
        """
        with self._lock:
            sources = list(self._sources)
        deadlines = [d for d in (s.next_timer_at() for s in sources) if d is not None]
        if not deadlines:
            return None
        target = min(deadlines)
        with self._lock:
            if target > self._now:
                self._now = target
            now = self._now
        self._notify()
        return now

    def _notify(self) -> None:
        with self._lock:
            callbacks: list[Callable[[], None]] = [s.on_clock_changed for s in self._sources]
        for callback in callbacks:
            callback()
