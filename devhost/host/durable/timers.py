"""Durable timers: armed from TimerCreated, fired (TimerFired) once the engine clock passes FireAt;
a ManualClock asks for the next one, a real clock sets how long the driver may sleep."""

from __future__ import annotations

from datetime import datetime

from devhost.host.durable import history as hist
from devhost.host.durable.state import EngineState


class DurableTimers(EngineState):
    def next_timer_at(self) -> datetime | None:
        with self._cond:
            return min((fire_at for _, fire_at in self._timers.values()), default=None)

    def on_clock_changed(self) -> None:
        with self._cond:
            self._fire_due_timers()
            self._cond.notify_all()

    def _fire_due_timers(self) -> None:
        now = self._clock.now()
        due = sorted(
            (fire_at, key, execution_id)
            for key, (execution_id, fire_at) in self._timers.items()
            if fire_at <= now
        )
        for fire_at, key, execution_id in due:
            del self._timers[key]
            instance = self._instances.get(key[0])
            if (
                instance is None
                or instance.execution_id != execution_id
                or instance.runtime_status.is_terminal
            ):
                continue
            self._deliver_event(instance, hist.timer_fired(now, key[1], fire_at), persist=False)

    def _driver_wait(self) -> float | None:
        if self._ready:
            return 0.0
        next_at = min((fire_at for _, fire_at in self._timers.values()), default=None)
        if next_at is None or not self._clock_is_realtime():
            return None  # woken by notify (new work, events, a ManualClock advance)
        # Capped so a clock adjustment can never leave the driver asleep for long.
        return min(1.0, max(0.0, (next_at - self._clock.now()).total_seconds()))
