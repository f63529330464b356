"""DurableEngine: runs Durable Functions orchestrations locally with the real SDK replay code.

The engine plays the part of the Durable extension + Durable Task Framework for one process:

* an *episode* builds the orchestration context JSON (history, old events ``IsPlayed``, a new
  ``OrchestratorStarted`` stamped with the engine clock, input, instance id, schema version), calls
  the orchestrator handle registered by ``@orchestration_trigger`` (the SDK's own replay engine),
  and parses the OrchestratorState it returns;
* the actions are re-executed against the history by :mod:`devhost.host.durable.replay` exactly as the
  extension's out-of-proc shim does, which yields the *new* actions with the sequence numbers the
  SDK expects; the engine appends TaskScheduled / TimerCreated / SubOrchestrationInstanceCreated,
  runs activities, fires timers when the clock passes ``FireAt`` and delivers TaskCompleted /
  TaskFailed / TimerFired / EventRaised to the next episode, until the orchestrator is done;
* ``call_activity_with_retry`` is realised by the host like Durable Task does it: TaskFailed, then
  a durable timer (TimerCreated/TimerFired), then a new TaskScheduled, the timer also after the
  last failed attempt (the SDK's RetryAbleTask waits for it before it raises).

Replay schema: the context announces ``upperSchemaVersion`` 1 and ``upperSchemaVersionNew`` 2, as
current Durable extensions do, so the SDK speaks schema V3 (V2 action shape: one list of top-level
actions with WhenAll/WhenAny compounds). No timer-length limits are sent by default (like the
MSSQL/DTS backends), so timers are never split; ``long_timers`` sends the Azure Storage limits
to exercise the SDK's long-timer path. ``replay_schema=ReplaySchema.V1`` makes the SDK use the
legacy list-of-action-sets shape; both are replayed the way the real shim replays them.

Two ways to run:

* deterministic (tests): nothing runs in the background; ``run_until_idle()`` runs episodes and
  activities inline, in order, until only timers or external events can move things on; with a
  ``ManualClock``, ``clock.advance(...)``/``clock.advance_to_next_timer()`` fire durable timers;
* driven (the local host): ``start_driver()`` (or ``with engine:``) starts a driver thread that
  runs episodes and fires timers, and a ``ThreadPoolExecutor`` of ``max_workers`` for activities.

Usage::

    functions = app.get_functions()            # once per app; share the list with the HTTP router
    engine = DurableEngine(functions, store_dir="state/durable")
    engine.resume_all()                        # pick up what a previous run left in flight
    with engine:                               # driver thread + activity worker pool
        instance_id = engine.start("provision", {"environment_id": "env-1"})
        status = engine.wait(instance_id, timeout=60)

    # deterministic, for tests:
    clock = ManualClock()
    engine = DurableEngine(functions, clock=clock)
    instance_id = engine.start("provision", {...})
    engine.run_until_idle()                    # episodes + activities inline, in order
    clock.advance_to_next_timer()              # fire the next durable timer now
    engine.run_until_idle()

Errors stay short: an activity failure is recorded with the exception message as ``Reason`` and
the exception type name as ``Details`` (the orchestrator sees ``Exception("<message> \\n <Type>")``);
a failed orchestration's output is ``"Orchestrator function '<name>' failed: <message>"``, with no
stack traces. Non-determinism (history that the current code no longer reproduces) fails the
instance with a message naming the recorded and the new action.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from azure.functions._durable_functions import df_dumps

from devhost.host.durable import history as hist
from devhost.host.durable.clock import EngineClock
from devhost.host.durable.dispatch import ActivityDispatch
from devhost.host.durable.episodes import Episodes
from devhost.host.durable.instance import InstanceStatus, RuntimeStatus
from devhost.host.durable.registry import ActivityOutcome, FunctionRegistry, FunctionSource
from devhost.host.durable.state import (
    EngineError,
    InstanceExistsError,
    InstanceNotFoundError,
    InstanceNotRunningError,
    LongTimerSettings,
    UnknownOrchestratorError,
)
from devhost.host.durable.timers import DurableTimers

__all__ = [
    "ActivityOutcome",
    "DurableEngine",
    "EngineError",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InstanceNotRunningError",
    "InstanceStatus",
    "LongTimerSettings",
    "RuntimeStatus",
    "UnknownOrchestratorError",
]
_log = logging.getLogger(__name__)


class DurableEngine(Episodes, ActivityDispatch, DurableTimers):
    """A small, real Durable Functions host for one process (see the module docstring).

    ``duplicate_activities=True`` runs every activity twice and records the *second* outcome.
    This is the failure Durable guarantees can happen (a worker runs the activity, crashes before
    its result is checkpointed, and the activity is redelivered): running the whole orchestration
    this way proves its activities are idempotent end to end. ``replay_activity`` re-runs one
    recorded activity with its recorded input, without touching the history, to compare outcomes.
    """

    @classmethod
    def from_app(cls, app: FunctionSource, **options: Any) -> DurableEngine:
        """Build from a FunctionApp/DFApp. Note ``app.get_functions()`` works once per app."""
        return cls(FunctionRegistry.from_app(app), **options)

    @property
    def registry(self) -> FunctionRegistry:
        return self._registry

    @property
    def clock(self) -> EngineClock:
        return self._clock

    def start(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start orchestrator ``name``; ``input`` is serialized like the Python client does."""
        serialized = None if input is None else json.dumps(df_dumps(input))
        return self.start_serialized(name, serialized, instance_id)

    def start_serialized(
        self, name: str, serialized_input: str | None, instance_id: str | None = None
    ) -> str:
        """Start with the input already in the host's stored form (the HTTP body's JSON)."""
        with self._cond:
            if not self._registry.has_orchestrator(name):
                raise UnknownOrchestratorError(
                    f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
                )
            instance_id = instance_id or uuid.uuid4().hex
            existing = self._instances.get(instance_id)
            if existing is not None and not existing.runtime_status.is_terminal:
                raise InstanceExistsError(
                    f"An Orchestration instance with the status {existing.runtime_status.value} "
                    f"already exists (instance id '{instance_id}')."
                )
            self._create_instance(name, instance_id, serialized_input, parent=None)
            return instance_id

    def status(self, instance_id: str) -> InstanceStatus | None:
        with self._cond:
            instance = self._instances.get(instance_id)
            return instance.snapshot() if instance else None

    def list_instances(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        statuses: Iterable[RuntimeStatus] | None = None,
        instance_id_prefix: str | None = None,
    ) -> list[InstanceStatus]:
        wanted = set(statuses) if statuses is not None else None
        with self._cond:
            found = [
                i.snapshot()
                for i in self._instances.values()
                if (created_from is None or i.created_time >= created_from)
                and (created_to is None or i.created_time <= created_to)
                and (wanted is None or i.runtime_status in wanted)
                and (instance_id_prefix is None or i.instance_id.startswith(instance_id_prefix))
            ]
        return sorted(found, key=lambda s: (s.created_time, s.instance_id))

    def terminate(self, instance_id: str, reason: str | None = None) -> None:
        with self._cond:
            instance = self._require_running(instance_id)
            now = self._clock.now()
            # Undelivered events (e.g. ExecutionStarted of a Pending instance) are kept in history.
            instance.history += [
                hist.orchestrator_started(now),
                *instance.inbox,
                hist.execution_terminated(now, reason),
                hist.execution_completed(now, RuntimeStatus.TERMINATED.value, json.dumps(reason)),
                hist.orchestrator_completed(now),
            ]
            self._finish(instance, now, RuntimeStatus.TERMINATED, reason)

    def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> None:
        """Deliver an external event; ``data`` reaches ``wait_for_external_event`` unchanged."""
        self.raise_event_serialized(instance_id, event_name, df_dumps(data))

    def raise_event_serialized(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """Deliver an event whose payload is already JSON text (what the SDK will ``df_loads``)."""
        with self._cond:
            instance = self._require_running(instance_id)
            self._deliver_event(instance, hist.event_raised(self._clock.now(), event_name, data_json))

    def purge(self, instance_id: str) -> bool:
        """Delete a finished instance and its history; False if there is none."""
        with self._cond:
            instance = self._instances.get(instance_id)
            if instance is None:
                return False
            if not instance.runtime_status.is_terminal:
                raise InstanceExistsError(
                    f"Only orchestrations in a terminal state can be purged, but '{instance_id}' "
                    f"has status {instance.runtime_status.value}"
                )
            self._remove(instance_id)
            return True

    def purge_where(
        self,
        *,
        created_from: datetime,
        created_to: datetime | None = None,
        statuses: Iterable[RuntimeStatus] | None = None,
    ) -> int:
        """Purge finished instances created in the window; returns how many were deleted."""
        wanted = set(statuses) if statuses is not None else None
        with self._cond:
            doomed = [
                i.instance_id
                for i in self._instances.values()
                if i.runtime_status.is_terminal
                and i.created_time >= created_from
                and (created_to is None or i.created_time <= created_to)
                and (wanted is None or i.runtime_status in wanted)
            ]
            for instance_id in doomed:
                self._remove(instance_id)
            return len(doomed)

    def restart(self, instance_id: str, new_instance_id: bool = True) -> str:
        """Start the same orchestrator again with the original input."""
        with self._cond:
            instance = self._instances.get(instance_id)
            if instance is None:
                raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
            target = None if new_instance_id else instance_id
            return self.start_serialized(instance.name, instance.input, target)

    def run_until_idle(self) -> None:
        """Deterministic mode: run episodes and activities inline until nothing can progress
        without time passing or an external event.

        Ready episodes run first; then every activity scheduled so far runs, one at a time in
        scheduling order, and their results reach the next episodes together (a fan-out's
        completions arrive as one batch of new events, as they often do on the real host).
        """
        if self._driver is not None:
            raise RuntimeError("run_until_idle() is for the deterministic mode; the driver is running")
        for _ in range(self._max_idle_steps):
            with self._cond:
                self._fire_due_timers()
                if self._ready:
                    self._run_next_episode()
                    continue
                batch = list(self._pending)
                self._pending.clear()
            if not batch:
                return
            for work in batch:
                outcome = self._execute(work)
                with self._cond:
                    self._deliver_activity(work, outcome)
        raise RuntimeError(f"engine still busy after {self._max_idle_steps} steps (endless loop?)")

    def wait(self, instance_id: str, timeout: float = 30.0) -> InstanceStatus:
        """Block until the instance is terminal or ``timeout`` seconds pass; returns its status.

        In deterministic mode this drives the engine itself (and sleeps until real timers fire
        when the clock is real time); with a ManualClock it returns once the engine is idle.
        """
        deadline = time.monotonic() + timeout
        if self._driver is not None:
            with self._cond:
                while True:
                    status = self._snapshot(instance_id)
                    remaining = deadline - time.monotonic()
                    if status.is_terminal or remaining <= 0:
                        return status
                    self._cond.wait(remaining)
        while True:
            self.run_until_idle()
            status = self._snapshot(instance_id)
            remaining = deadline - time.monotonic()
            next_at = self.next_timer_at()
            if status.is_terminal or remaining <= 0 or next_at is None or not self._clock_is_realtime():
                return status
            time.sleep(min(remaining, max(0.0, (next_at - self._clock.now()).total_seconds())))

    async def wait_async(self, instance_id: str, timeout: float = 30.0) -> InstanceStatus:
        return await asyncio.to_thread(self.wait, instance_id, timeout)

    def start_driver(self) -> None:
        """Run in the background: a driver thread plus a pool of ``max_workers`` for activities."""
        with self._cond:
            if self._driver is not None:
                return
            self._stopping = False
            self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="durable-activity")
            self._driver = threading.Thread(target=self._drive, name="durable-driver", daemon=True)
            self._driver.start()

    def stop_driver(self) -> None:
        with self._cond:
            driver, executor = self._driver, self._executor
            self._stopping = True
            self._cond.notify_all()
        if driver is not None:
            driver.join()
        if executor is not None:
            # Activities already running finish and are recorded; queued ones go back to _pending.
            executor.shutdown(wait=True, cancel_futures=True)
        with self._cond:
            self._driver = None
            self._executor = None

    def close(self) -> None:
        self.stop_driver()

    def __enter__(self) -> Self:
        self.start_driver()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_driver()

    def resume_all(self) -> list[str]:
        """Pick up every non-terminal instance (e.g. loaded from the store after a restart).

        Outstanding work is re-derived from history: activities scheduled but never answered
        run again (at-least-once, as in Durable), unfired timers are re-armed, undelivered events
        get their episode, and finished sub-orchestrations report to their parents.
        """
        with self._cond:
            resumed: list[str] = []
            for instance in list(self._instances.values()):
                if instance.runtime_status.is_terminal:
                    continue
                self._rebuild_outstanding(instance)
                resumed.append(instance.instance_id)
            self._cond.notify_all()
            return resumed

    def _drive(self) -> None:
        with self._cond:
            while not self._stopping:
                try:
                    self._fire_due_timers()
                    while self._ready and not self._stopping:
                        self._run_next_episode()
                        self._fire_due_timers()
                    while self._pending:
                        self._submit(self._pending.popleft())
                except Exception:  # keep driving: an engine bug must not stop every orchestration
                    _log.exception("durable driver step failed")
                self._cond.wait(self._driver_wait())
