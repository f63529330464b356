"""The engine's state: every instance, the ready queue, the activity queue and the armed timers,
behind one lock, persisted to an InstanceStore after each change that history alone could not
bring back. The engine's parts (episodes, activity dispatch, timers) work on it with the lock held."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.durable_functions.models.ReplaySchema import ReplaySchema
from azure.functions.decorators.function_app import Function

from devhost.host.durable import history as hist
from devhost.host.durable.clock import EngineClock, RealClock
from devhost.host.durable.instance import Instance, InstanceStatus, ParentLink
from devhost.host.durable.registry import FunctionRegistry
from devhost.host.durable.store import InstanceStore

log = logging.getLogger("devhost.host.durable.engine")


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


@dataclass(frozen=True)
class LongTimerSettings:
    """The Azure Storage timer limits the real host sends with schema V3."""

    maximum_short_timer: timedelta = timedelta(days=6)
    long_timer_interval: timedelta = timedelta(days=3)


@dataclass(frozen=True)
class ActivityWork:
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


class EngineState:
    def __init__(
        self,
        functions: Iterable[Function] | FunctionRegistry,
        *,
        clock: EngineClock | None = None,
        store_dir: str | os.PathLike[str] | None = None,
        max_workers: int = 8,
        duplicate_activities: bool = False,
        replay_schema: ReplaySchema = ReplaySchema.V3,
        long_timers: LongTimerSettings | None = None,
        max_idle_steps: int = 100_000,
    ) -> None:
        self._registry = functions if isinstance(functions, FunctionRegistry) else FunctionRegistry(functions)
        self._clock: EngineClock = clock or RealClock()
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
        self._pending: deque[ActivityWork] = deque()
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
        self._clock.attach(self)  # the clock asks for the next timer (DurableTimers answers)

    # The clock's TimerSource, answered by DurableTimers.
    def next_timer_at(self) -> datetime | None:
        raise NotImplementedError

    def on_clock_changed(self) -> None:
        raise NotImplementedError

    def _clock_is_realtime(self) -> bool:
        return self._clock.realtime

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

    def _changed(self, instance: Instance, persist: bool = True) -> None:
        instance.last_updated_time = self._clock.now()
        if persist and self._store is not None:
            try:
                self._store.save(instance)
            except OSError:
                log.exception("could not persist instance %s", instance.instance_id)
        self._cond.notify_all()

    def _deliver_event(self, instance: Instance, event: hist.Event, persist: bool = True) -> None:
        """`persist=False` for an activity's result or a timer's firing: the episode this wakes
        saves it with its history. Lost in a crash before then, the activity runs again and the
        timer fires again, both re-derived from history on resume, at least once as in Durable."""
        instance.inbox.append(event)
        self._mark_ready(instance)
        self._changed(instance, persist)

    def _drop_timers(self, instance_id: str) -> None:
        for key in [k for k in self._timers if k[0] == instance_id]:
            del self._timers[key]

    def _dispatch_activity(self, instance: Instance, task_id: int, name: str, input_json: str | None) -> None:
        key = (instance.instance_id, instance.execution_id, task_id)
        if key in self._in_flight:
            return
        self._in_flight.add(key)
        # Queued, not started: the driver (or run_until_idle) starts it after the history is saved.
        self._pending.append(
            ActivityWork(instance.instance_id, instance.execution_id, task_id, name, input_json)
        )
