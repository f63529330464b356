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
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.models.ReplaySchema import ReplaySchema
from azure.functions._durable_functions import df_dumps
from azure.functions.decorators.function_app import Function

from devhost.host.durable import history as hist
from devhost.host.durable.actions import OrchestratorState, OrchestratorStateError, parse_state
from devhost.host.durable.clock import Clock, RealClock
from devhost.host.durable.instance import Instance, InstanceStatus, ParentLink, RuntimeStatus
from devhost.host.durable.registry import (
    ActivityOutcome,
    FunctionRegistry,
    FunctionSource,
    OrchestratorFunction,
    failure_outcome,
)
from devhost.host.durable.replay import NewWork, ReplayError, ReplayResult, replay
from devhost.host.durable.store import InstanceStore

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
_OOP_MARKER = "\n\n$OutOfProcData$:"  # how the SDK smuggles its state out of a raised exception
_MAX_MESSAGE = 1000


class EngineError(Exception):
    """Base class of the engine's refusals."""


class UnknownOrchestratorError(EngineError):
    pass


class InstanceNotFoundError(EngineError):
    pass


class InstanceExistsError(EngineError):
    """A non-terminal instance with this id exists (the host's OrchestrationAlreadyExists)."""


class InstanceNotRunningError(EngineError):
    """The instance already finished (HTTP 410 Gone in the host API)."""


class _OrchestratorCrash(Exception):
    pass


@dataclass(frozen=True)
class LongTimerSettings:
    """The Azure Storage timer limits the real host sends with schema V3."""

    maximum_short_timer: timedelta = timedelta(days=6)
    long_timer_interval: timedelta = timedelta(days=3)


@dataclass(frozen=True)
class _ActivityWork:
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


def _timespan(delta: timedelta) -> str:
    """A .NET TimeSpan string ("d.hh:mm:ss"), the form the SDK parses."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class DurableEngine:
    """A small, real Durable Functions host for one process (see the module docstring).

    ``duplicate_activities=True`` runs every activity twice and records the *second* outcome.
    This is the failure Durable guarantees can happen (a worker runs the activity, crashes before
    its result is checkpointed, and the activity is redelivered): running the whole orchestration
    this way proves its activities are idempotent end to end. ``replay_activity`` re-runs one
    recorded activity with its recorded input, without touching the history, to compare outcomes.
    """

    def __init__(
        self,
        functions: Iterable[Function] | FunctionRegistry,
        *,
        clock: Clock | None = None,
        store_dir: str | os.PathLike[str] | None = None,
        max_workers: int = 8,
        duplicate_activities: bool = False,
        replay_schema: ReplaySchema = ReplaySchema.V3,
        long_timers: LongTimerSettings | None = None,
        max_idle_steps: int = 100_000,
    ) -> None:
        self._registry = functions if isinstance(functions, FunctionRegistry) else FunctionRegistry(functions)
        self._clock: Clock = clock or RealClock()
        self._store = InstanceStore(store_dir) if store_dir is not None else None
        self._max_workers = max_workers
        self._duplicate_activities = duplicate_activities
        self._schema = replay_schema
        self._long_timers = long_timers
        self._max_idle_steps = max_idle_steps

        self._cond = threading.Condition(threading.RLock())
        self._instances: dict[str, Instance] = {}
        self._ready: deque[str] = deque()
        self._ready_set: set[str] = set()
        self._pending: deque[_ActivityWork] = deque()
        self._in_flight: set[tuple[str, str, int]] = set()
        self._timers: dict[tuple[str, int], tuple[str, datetime]] = {}
        # Side effects of an episode that must wait until its history is on disk.
        self._after_save: list[Callable[[], None]] = []
        self._driver: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

        if self._store is not None:
            for instance in self._store.load_all():
                self._instances[instance.instance_id] = instance
        self._clock.attach(self)

    @classmethod
    def from_app(cls, app: FunctionSource, **options: Any) -> DurableEngine:
        """Build from a FunctionApp/DFApp. Note ``app.get_functions()`` works once per app."""
        return cls(FunctionRegistry.from_app(app), **options)

    @property
    def registry(self) -> FunctionRegistry:
        return self._registry

    @property
    def clock(self) -> Clock:
        return self._clock

    # ------------------------------------------------------------------ client operations
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

    # ------------------------------------------------------------------ idempotency checks
    def replay_activity(self, instance_id: str, task_id: int) -> ActivityOutcome:
        """Run the activity recorded as TaskScheduled ``task_id`` again with its recorded input.

        The history is not changed: compare the result with the recorded TaskCompleted to show
        the activity is idempotent (Durable may execute any activity more than once).
        """
        with self._cond:
            instance = self._instances.get(instance_id)
            if instance is None:
                raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
            scheduled = next(
                (
                    e
                    for e in instance.history
                    if e["EventType"] == HistoryEventType.TASK_SCHEDULED and e["EventId"] == task_id
                ),
                None,
            )
        if scheduled is None:
            raise KeyError(f"instance '{instance_id}' has no TaskScheduled #{task_id}")
        activity = self._registry.activity(str(scheduled["Name"]))
        if activity is None:
            raise KeyError(f"activity '{scheduled['Name']}' is not registered")
        return activity.invoke(scheduled.get("Input"))

    # ------------------------------------------------------------------ running
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

    # ------------------------------------------------------------------ clock (TimerSource)
    def next_timer_at(self) -> datetime | None:
        with self._cond:
            return min((fire_at for _, fire_at in self._timers.values()), default=None)

    def on_clock_changed(self) -> None:
        with self._cond:
            self._fire_due_timers()
            self._cond.notify_all()

    def _clock_is_realtime(self) -> bool:
        return self._clock.realtime

    # ------------------------------------------------------------------ internals (lock held)
    def _snapshot(self, instance_id: str) -> InstanceStatus:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        return instance.snapshot()

    def _require_running(self, instance_id: str) -> Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        if instance.runtime_status.is_terminal:
            raise InstanceNotRunningError(
                f"Instance '{instance_id}' is {instance.runtime_status.value}: it accepts no more events."
            )
        return instance

    def _create_instance(
        self, name: str, instance_id: str, serialized_input: str | None, parent: ParentLink | None
    ) -> Instance:
        now = self._clock.now()
        execution_id = uuid.uuid4().hex
        parent_json = (
            {
                "OrchestrationInstance": {
                    "InstanceId": parent.instance_id,
                    "ExecutionId": parent.execution_id,
                },
                "TaskScheduleId": parent.task_id,
            }
            if parent
            else None
        )
        instance = Instance(
            instance_id=instance_id,
            name=name,
            execution_id=execution_id,
            input=serialized_input,
            created_time=now,
            last_updated_time=now,
            parent=parent,
        )
        instance.inbox.append(
            hist.execution_started(now, name, instance_id, execution_id, serialized_input, parent_json)
        )
        self._drop_timers(instance_id)
        self._instances[instance_id] = instance
        self._mark_ready(instance)
        self._changed(instance)
        return instance

    def _remove(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)
        self._drop_timers(instance_id)
        if self._store is not None:
            self._store.delete(instance_id)

    def _mark_ready(self, instance: Instance) -> None:
        if instance.instance_id not in self._ready_set:
            self._ready_set.add(instance.instance_id)
            self._ready.append(instance.instance_id)

    def _changed(self, instance: Instance) -> None:
        instance.last_updated_time = self._clock.now()
        if self._store is not None:
            try:
                self._store.save(instance)
            except OSError:
                _log.exception("could not persist instance %s", instance.instance_id)
        self._cond.notify_all()

    def _deliver_event(self, instance: Instance, event: hist.Event) -> None:
        instance.inbox.append(event)
        self._mark_ready(instance)
        self._changed(instance)

    def _drop_timers(self, instance_id: str) -> None:
        for key in [k for k in self._timers if k[0] == instance_id]:
            del self._timers[key]

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
            self._deliver_event(instance, hist.timer_fired(now, key[1], fire_at))

    def _run_next_episode(self) -> None:
        instance_id = self._ready.popleft()
        self._ready_set.discard(instance_id)
        instance = self._instances.get(instance_id)
        if instance is None:
            return
        try:
            self._episode(instance)
        except Exception as exc:  # fault isolation: one broken instance never stops the engine
            _log.exception("episode of %s crashed", instance_id)
            self._after_save.clear()
            if not instance.runtime_status.is_terminal:
                self._fail(instance, self._clock.now(), f"internal engine error: {type(exc).__name__}: {exc}")
        self._changed(instance)
        # Like the real host, work leaves the orchestration only once its history is committed:
        # a crash before this point replays the episode instead of losing or doubling work.
        deferred, self._after_save = self._after_save, []
        for action in deferred:
            action()

    def _episode(self, instance: Instance) -> None:
        if instance.runtime_status.is_terminal or not instance.inbox:
            instance.inbox.clear()
            return
        now = self._clock.now()
        past = instance.history
        new_events = [hist.orchestrator_started(now), *instance.inbox]
        instance.inbox = []
        instance.history = past + new_events
        instance.runtime_status = RuntimeStatus.RUNNING
        orchestrator = self._registry.orchestrator(instance.name)
        if orchestrator is None:
            missing = f"The function '{instance.name}' doesn't exist, is disabled, or is not an orchestrator."
            self._fail(instance, now, missing)
            return
        try:
            state = self._call_orchestrator(orchestrator, self._context_json(instance, past, new_events))
        except _OrchestratorCrash as exc:
            self._fail(instance, now, self._failure_message(instance.name, str(exc)))
            return
        if state.has_custom_status:
            instance.custom_status = state.custom_status
        if state.error is not None:
            self._fail(instance, now, self._failure_message(instance.name, state.error))
            return
        try:
            result = replay(
                instance.history,
                state,
                instance_id=instance.instance_id,
                has_activity=self._registry.has_activity,
                has_orchestrator=self._registry.has_orchestrator,
            )
        except ReplayError as exc:
            self._fail(instance, now, self._failure_message(instance.name, str(exc)))
            return
        if state.is_done:
            continues, next_input = state.continue_as_new_input()
            if continues:
                self._continue_as_new(instance, now, next_input)
            else:
                instance.history.append(
                    hist.execution_completed(now, RuntimeStatus.COMPLETED.value, json.dumps(state.output))
                )
                instance.history.append(hist.orchestrator_completed(now))
                self._finish(instance, now, RuntimeStatus.COMPLETED, state.output)
            return
        self._record_new_work(instance, now, result)
        instance.history.append(hist.orchestrator_completed(now))

    def _context_json(self, instance: Instance, past: list[hist.Event], new: list[hist.Event]) -> str:
        context: dict[str, Any] = {
            "history": [{**e, "IsPlayed": True} for e in past] + [{**e, "IsPlayed": False} for e in new],
            "instanceId": instance.instance_id,
            "isReplaying": bool(past),
            "parentInstanceId": instance.parent.instance_id if instance.parent else None,
            "input": instance.input_value(),
            "upperSchemaVersion": min(self._schema.value, ReplaySchema.V2.value),
        }
        if self._schema.value >= ReplaySchema.V3.value:
            context["upperSchemaVersionNew"] = self._schema.value
            if self._long_timers is not None:
                context["maximumShortTimerDuration"] = _timespan(self._long_timers.maximum_short_timer)
                context["longRunningTimerIntervalDuration"] = _timespan(self._long_timers.long_timer_interval)
        return json.dumps(context)

    @staticmethod
    def _call_orchestrator(orchestrator: OrchestratorFunction, context_json: str) -> OrchestratorState:
        try:
            text = orchestrator.handle(context_json)
        except Exception as exc:
            head, marker, tail = str(exc).rpartition(_OOP_MARKER)
            if marker:
                # The orchestrator raised: the SDK appends its state (actions + error) to the message.
                try:
                    state = parse_state(tail)
                except OrchestratorStateError:
                    raise _OrchestratorCrash(head or type(exc).__name__) from exc
                return state if state.error else replace(state, error=head or type(exc).__name__)
            raise _OrchestratorCrash(f"{type(exc).__name__}: {exc}") from exc
        try:
            return parse_state(text)
        except OrchestratorStateError as exc:
            raise _OrchestratorCrash(str(exc)) from exc

    @staticmethod
    def _failure_message(name: str, error: str) -> str:
        return _short(f"Orchestrator function '{name}' failed: {error}")

    def _record_new_work(self, instance: Instance, now: datetime, result: ReplayResult) -> None:
        for timer_id in result.cancelled_timers:
            instance.cancelled_timers.add(timer_id)
            self._timers.pop((instance.instance_id, timer_id), None)
        for work in result.new_work:
            if work.kind == "activity":
                name = work.name or ""
                instance.history.append(hist.task_scheduled(now, work.event_id, name, work.input))
                self._dispatch_activity(instance, work.event_id, name, work.input)
            elif work.kind == "timer":
                assert work.fire_at is not None
                instance.history.append(hist.timer_created(now, work.event_id, work.fire_at))
                if work.event_id not in instance.cancelled_timers:
                    self._timers[(instance.instance_id, work.event_id)] = (
                        instance.execution_id,
                        work.fire_at,
                    )
            else:
                instance.history.append(
                    hist.sub_orchestration_created(
                        now, work.event_id, work.name or "", work.instance_id or "", work.input
                    )
                )
                self._after_save.append(lambda w=work: self._start_sub_orchestration(instance, w, now))  # type: ignore[misc]

    def _start_sub_orchestration(self, parent: Instance, work: NewWork, now: datetime) -> None:
        child_id = work.instance_id or ""
        existing = self._instances.get(child_id)
        if existing is not None and not existing.runtime_status.is_terminal:
            parent.inbox.append(
                hist.sub_orchestration_failed(
                    now,
                    work.event_id,
                    f"An orchestration with instance ID '{child_id}' is already running.",
                    "InstanceExistsError",
                )
            )
            self._mark_ready(parent)
            return
        # The SDK sends df_dumps(input); the host stores that text as a JSON string.
        serialized = None if work.input is None else json.dumps(work.input)
        link = ParentLink(parent.instance_id, parent.execution_id, work.event_id)
        self._create_instance(work.name or "", child_id, serialized, parent=link)

    def _dispatch_activity(self, instance: Instance, task_id: int, name: str, input_json: str | None) -> None:
        key = (instance.instance_id, instance.execution_id, task_id)
        if key in self._in_flight:
            return
        self._in_flight.add(key)
        # Queued, not started: the driver (or run_until_idle) starts it after the history is saved.
        self._pending.append(
            _ActivityWork(instance.instance_id, instance.execution_id, task_id, name, input_json)
        )

    def _continue_as_new(self, instance: Instance, now: datetime, next_input: str | None) -> None:
        instance.history.append(hist.orchestrator_completed(now))
        self._drop_timers(instance.instance_id)
        execution_id = uuid.uuid4().hex
        serialized = None if next_input is None else json.dumps(next_input)
        instance.execution_id = execution_id
        instance.input = serialized
        instance.history = []
        instance.cancelled_timers = set()
        instance.output = None
        instance.inbox = [
            hist.execution_started(now, instance.name, instance.instance_id, execution_id, serialized, None)
        ]
        self._mark_ready(instance)

    def _fail(self, instance: Instance, now: datetime, message: str) -> None:
        instance.history.append(
            hist.execution_completed(now, RuntimeStatus.FAILED.value, json.dumps(message))
        )
        instance.history.append(hist.orchestrator_completed(now))
        self._finish(instance, now, RuntimeStatus.FAILED, message)

    def _finish(self, instance: Instance, now: datetime, status: RuntimeStatus, output: Any) -> None:
        instance.runtime_status = status
        instance.output = output
        instance.inbox.clear()
        self._drop_timers(instance.instance_id)
        self._changed(instance)
        self._report_to_parent(instance, now)

    def _report_to_parent(self, child: Instance, now: datetime) -> None:
        link = child.parent
        if link is None:
            return
        parent = self._instances.get(link.instance_id)
        if parent is None or parent.execution_id != link.execution_id or parent.runtime_status.is_terminal:
            return
        if link.task_id in hist.completed_ids(parent.history) | hist.completed_ids(parent.inbox):
            return
        if child.runtime_status == RuntimeStatus.COMPLETED:
            event = hist.sub_orchestration_completed(now, link.task_id, json.dumps(child.output))
        else:
            reason = child.output if isinstance(child.output, str) else json.dumps(child.output)
            event = hist.sub_orchestration_failed(now, link.task_id, reason, child.runtime_status.value)
        self._deliver_event(parent, event)

    def _rebuild_outstanding(self, instance: Instance) -> None:
        answered = hist.completed_ids(instance.history) | hist.completed_ids(instance.inbox)
        for event in instance.history:
            event_id = int(event["EventId"])
            if event_id < 0 or event_id in answered:
                continue
            event_type = event["EventType"]
            if event_type == HistoryEventType.TASK_SCHEDULED:
                self._dispatch_activity(instance, event_id, str(event["Name"]), event.get("Input"))
            elif event_type == HistoryEventType.TIMER_CREATED and event_id not in instance.cancelled_timers:
                fire_at = hist.parse_time(event["FireAt"])
                self._timers[(instance.instance_id, event_id)] = (instance.execution_id, fire_at)
            elif event_type == HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED:
                self._resume_sub_orchestration(instance, event)
        if instance.inbox:
            self._mark_ready(instance)

    def _resume_sub_orchestration(self, parent: Instance, event: hist.Event) -> None:
        child = self._instances.get(str(event["InstanceId"]))
        link = ParentLink(parent.instance_id, parent.execution_id, int(event["EventId"]))
        if child is None:
            # Crashed after recording the parent but before saving the child: create it now.
            work = NewWork(
                event_id=link.task_id,
                kind="sub_orchestration",
                name=str(event["Name"]),
                input=event.get("Input"),
                instance_id=str(event["InstanceId"]),
            )
            self._start_sub_orchestration(parent, work, self._clock.now())
        elif child.parent == link and child.runtime_status.is_terminal:
            self._report_to_parent(child, self._clock.now())

    # ------------------------------------------------------------------ activities
    def _execute(self, work: _ActivityWork) -> ActivityOutcome:
        activity = self._registry.activity(work.name)
        if activity is None:
            return failure_outcome(LookupError(f"activity '{work.name}' is not registered"))
        outcome = activity.invoke(work.input)
        if self._duplicate_activities:
            # Redelivery after a crash: the first result was lost, the second one is recorded.
            outcome = activity.invoke(work.input)
        return outcome

    def _deliver_activity(self, work: _ActivityWork, outcome: ActivityOutcome) -> None:
        self._in_flight.discard((work.instance_id, work.execution_id, work.task_id))
        instance = self._instances.get(work.instance_id)
        if (
            instance is None
            or instance.execution_id != work.execution_id
            or instance.runtime_status.is_terminal
        ):
            return  # a result for an execution that has ended: dropped, as in Durable
        if work.task_id in hist.completed_ids(instance.history) | hist.completed_ids(instance.inbox):
            return
        now = self._clock.now()
        if outcome.ok:
            event = hist.task_completed(now, work.task_id, outcome.result_json or "null")
        else:
            event = hist.task_failed(now, work.task_id, outcome.reason or "activity failed", outcome.details)
        self._deliver_event(instance, event)

    def _submit(self, work: _ActivityWork) -> None:
        assert self._executor is not None
        future = self._executor.submit(self._execute, work)
        future.add_done_callback(lambda f, w=work: self._on_activity_done(w, f))  # type: ignore[misc]

    def _on_activity_done(self, work: _ActivityWork, future: Future[ActivityOutcome]) -> None:
        if future.cancelled():  # the driver stopped before it started: run it next time
            with self._cond:
                self._pending.append(work)
            return
        error = future.exception()
        outcome = failure_outcome(error) if error is not None else future.result()
        with self._cond:
            self._deliver_activity(work, outcome)

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

    def _driver_wait(self) -> float | None:
        if self._ready:
            return 0.0
        next_at = min((fire_at for _, fire_at in self._timers.values()), default=None)
        if next_at is None or not self._clock_is_realtime():
            return None  # woken by notify (new work, events, a ManualClock advance)
        # Capped so a clock adjustment can never leave the driver asleep for long.
        return min(1.0, max(0.0, (next_at - self._clock.now()).total_seconds()))
