"""Host-side replay: what the Durable extension does with the actions an orchestrator returns.

The Python SDK replays the user's generator and returns *all* actions it has ever scheduled. The
real host (the extension's out-of-proc shim on top of the Durable Task Framework) then re-executes
those actions against the history, which is how it finds out which actions are new and how it
numbers them. This module reproduces that, because the numbering is the contract with the SDK:

* every task, timer and sub-orchestration gets the next sequence number (its ``EventId``) at the
  moment the shim *invokes* it; external-event waits get none;
* schema V2/V3: the shim awaits the top-level actions one after another; schema V1: it invokes an
  action set and awaits ``WhenAny`` of it before the next set;
* ``CallActivityWithRetry`` / ``CallSubOrchestratorWithRetry`` run the Durable Task retry loop:
  attempt, and after every failed attempt (the last one included) a durable timer of
  ``first_interval * backoff**attempt``; a new attempt is a new TaskScheduled with a new number.
  The SDK's ``RetryAbleTask`` numbers its hidden timer and re-scheduled task the same way, so the
  history replays.

Continuations run synchronously while the history is walked in order, as in the Durable Task
Framework, so numbers allocated in reaction to a completion (retry timers, the next sequential
action) come out in the same order as in the SDK. Scheduling events in history that the replayed
actions do not reproduce are reported as non-determinism.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from devhost.host.durable.actions import Action, OrchestratorState, RetryPolicy
from devhost.host.durable.history import COMPLETION_KEYS, Event, parse_time

WorkKind = Literal["activity", "timer", "sub_orchestration"]


class ReplayError(Exception):
    """The orchestration cannot continue; the message is short and meant for the status output."""


class NonDeterminismError(ReplayError):
    pass


class UnsupportedActionError(ReplayError):
    pass


class UnknownFunctionError(ReplayError):
    pass


@dataclass(frozen=True)
class NewWork:
    """An action the history has not recorded yet: the host must record it and carry it out."""

    event_id: int
    kind: WorkKind
    name: str | None = None
    input: str | None = None
    fire_at: datetime | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class ReplayResult:
    new_work: tuple[NewWork, ...]
    cancelled_timers: frozenset[int]


_SCHEDULING_KINDS: dict[int, WorkKind] = {
    HistoryEventType.TASK_SCHEDULED: "activity",
    HistoryEventType.TIMER_CREATED: "timer",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED: "sub_orchestration",
}
_FAILURE_EVENTS = {HistoryEventType.TASK_FAILED, HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED}


class _Future:
    """A minimal single-threaded future: callbacks run synchronously on resolution."""

    __slots__ = ("_callbacks", "done", "ok", "value")

    def __init__(self) -> None:
        self.done = False
        self.ok = True
        self.value: Any = None
        self._callbacks: list[Callable[[_Future], None]] = []

    def resolve(self, ok: bool, value: Any = None) -> None:
        if self.done:
            return  # e.g. a timer that fires after it was cancelled
        self.done, self.ok, self.value = True, ok, value
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def then(self, callback: Callable[[_Future], None]) -> None:
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    @classmethod
    def resolved(cls, ok: bool, value: Any = None) -> _Future:
        future = cls()
        future.resolve(ok, value)
        return future


# A host "coroutine": yields futures to await, returns (ok, value).
_Coroutine = Generator[_Future, _Future | None, tuple[bool, Any]]


def _spawn(coroutine: _Coroutine) -> _Future:
    """Run ``coroutine`` until it awaits something pending; resume it when that resolves."""
    result = _Future()

    def step(sent: _Future | None) -> None:
        # Loop instead of recursing while awaited futures are already done.
        while True:
            try:
                awaited = coroutine.send(sent)
            except StopIteration as stop:
                ok, value = stop.value
                result.resolve(ok, value)
                return
            if not awaited.done:
                awaited.then(step)
                return
            sent = awaited

    step(None)
    return result


class _Simulation:
    def __init__(
        self,
        instance_id: str,
        has_activity: Callable[[str], bool],
        has_orchestrator: Callable[[str], bool],
    ) -> None:
        self._instance_id = instance_id
        self._has_activity = has_activity
        self._has_orchestrator = has_orchestrator
        self.now: datetime | None = None
        self._next_id = 0
        self._unconfirmed: dict[int, NewWork] = {}  # insertion order is numbering order
        self._waiting: dict[int, _Future] = {}
        self._event_waiters: defaultdict[str, deque[_Future]] = defaultdict(deque)
        self._event_buffer: defaultdict[str, deque[Any]] = defaultdict(deque)
        self.cancelled_timers: set[int] = set()

    # -- scheduling primitives (the DTFx context) -------------------------------------------
    def _schedule(self, kind: WorkKind, **fields: Any) -> tuple[int, _Future]:
        event_id = self._next_id
        self._next_id += 1
        future = _Future()
        self._unconfirmed[event_id] = NewWork(event_id=event_id, kind=kind, **fields)
        self._waiting[event_id] = future
        return event_id, future

    def _now(self) -> datetime:
        if self.now is None:
            raise ReplayError("history has no OrchestratorStarted event before the first action")
        return self.now

    def _activity(self, action: Action) -> _Future:
        name = action.function_name or ""
        if not self._has_activity(name):
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            )
        return self._schedule("activity", name=name, input=action.input)[1]

    def _sub_orchestration(self, action: Action) -> _Future:
        name = action.function_name or ""
        if not self._has_orchestrator(name):
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        event_id = self._next_id
        # Without an explicit id the child gets a deterministic one derived from the parent.
        child_id = action.instance_id or f"{self._instance_id}:{event_id:04d}"
        return self._schedule("sub_orchestration", name=name, input=action.input, instance_id=child_id)[1]

    def _timer(self, fire_at: datetime) -> tuple[int, _Future]:
        return self._schedule("timer", fire_at=fire_at)

    def _external_event(self, name: str) -> _Future:
        buffered = self._event_buffer[name]
        if buffered:
            return _Future.resolved(True, buffered.popleft())
        future = _Future()
        self._event_waiters[name].append(future)
        return future

    def _with_retry(self, attempt: Callable[[], _Future], policy: RetryPolicy) -> _Coroutine:
        last_error: Any = None
        for number in range(policy.max_attempts):
            outcome = attempt()
            yield outcome
            if outcome.ok:
                return True, outcome.value
            last_error = outcome.value
            # Durable Task waits after every failure, the last one included; the SDK expects it.
            yield self._timer(self._now() + policy.delay(number))[1]
        return False, last_error

    @staticmethod
    def _when_all(futures: Sequence[_Future]) -> _Future:
        combined = _Future()
        pending = [len(futures)]
        if not futures:
            combined.resolve(True, [])

        def on_done(_: _Future) -> None:
            pending[0] -= 1
            if pending[0] == 0:
                combined.resolve(all(f.ok for f in futures), None)

        for future in futures:
            future.then(on_done)
        return combined

    @staticmethod
    def _when_any(futures: Sequence[_Future]) -> _Future:
        combined = _Future()
        if not futures:
            combined.resolve(True, None)
        for future in futures:
            future.then(lambda winner: combined.resolve(True, winner))
        return combined

    def invoke(self, action: Action) -> _Future | None:
        """Start one action like the shim's InvokeAPIFromAction; None for fire-and-forget."""
        kind = action.kind
        if kind == ActionType.CALL_ACTIVITY:
            return self._activity(action)
        if kind in (ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            if action.retry is None:
                raise ReplayError("a *WithRetry action came without retryOptions")
            call = self._activity if kind == ActionType.CALL_ACTIVITY_WITH_RETRY else self._sub_orchestration
            return _spawn(self._with_retry(lambda: call(action), action.retry))
        if kind == ActionType.CALL_SUB_ORCHESTRATOR:
            return self._sub_orchestration(action)
        if kind == ActionType.CREATE_TIMER:
            if action.fire_at is None:
                raise ReplayError("a CreateTimer action came without fireAt")
            timer_id, future = self._timer(action.fire_at)
            if action.is_cancelled:
                # The shim creates the timer, then cancels the token: the await ends at once.
                self.cancelled_timers.add(timer_id)
                return _Future.resolved(False, "cancelled")
            return future
        if kind == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return self._external_event(action.event_name or "")
        if kind == ActionType.WHEN_ALL:
            return self._when_all(self._invoke_children(action))
        if kind == ActionType.WHEN_ANY:
            return self._when_any(self._invoke_children(action))
        if kind == ActionType.CONTINUE_AS_NEW:
            return None
        label = kind.name if isinstance(kind, ActionType) else str(kind)
        raise UnsupportedActionError(
            f"action {label} (entities, durable HTTP) is not supported by the local durable engine"
        )

    def _invoke_children(self, action: Action) -> list[_Future]:
        return [f for f in (self.invoke(child) for child in action.children) if f is not None]

    # -- the shim's replay loops ----------------------------------------------------------------
    def script_v2(self, actions: Sequence[Action]) -> _Coroutine:
        for action in actions:
            future = self.invoke(action)
            if future is not None:
                yield future  # the shim swallows failures here: the SDK handles them
        return True, None

    def script_v1(self, action_sets: Sequence[Sequence[Action]]) -> _Coroutine:
        for action_set in action_sets:
            futures = [f for f in (self.invoke(a) for a in action_set) if f is not None]
            if futures:
                yield self._when_any(futures)
        return True, None

    # -- walking the history --------------------------------------------------------------------
    def _confirm(self, event: Event, kind: WorkKind) -> None:
        event_id = int(event["EventId"])
        recorded = _describe_event(kind, event)
        work = self._unconfirmed.pop(event_id, None)
        if work is None:
            raise NonDeterminismError(
                f"Non-deterministic workflow detected: history has {recorded} as action #{event_id}, "
                "but the orchestrator no longer schedules it."
            )
        if work.kind != kind or (kind != "timer" and work.name != event.get("Name")):
            raise NonDeterminismError(
                f"Non-deterministic workflow detected: history has {recorded} as action #{event_id}, "
                f"but the orchestrator now schedules {_describe_work(work)} there."
            )

    def _complete(self, event: Event, event_type: int) -> None:
        key = COMPLETION_KEYS[event_type]
        future = self._waiting.pop(int(event[key]), None)
        if future is None:
            return  # an answer for an action no longer awaited (e.g. a duplicate delivery)
        if event_type in _FAILURE_EVENTS:
            future.resolve(False, event.get("Reason"))
        else:
            future.resolve(True, event.get("Result"))

    def _raise_event(self, event: Event) -> None:
        name = str(event.get("Name"))
        waiters = self._event_waiters[name]
        if waiters:
            waiters.popleft().resolve(True, event.get("Input"))
        else:
            self._event_buffer[name].append(event.get("Input"))

    def run(self, history: Sequence[Event], script: _Coroutine) -> ReplayResult:
        started = False
        for event in history:
            event_type = int(event["EventType"])
            if event_type == HistoryEventType.ORCHESTRATOR_STARTED:
                self.now = parse_time(event["Timestamp"])
            elif event_type == HistoryEventType.EXECUTION_STARTED and not started:
                started = True
                _spawn(script)
            elif event_type in _SCHEDULING_KINDS:
                self._confirm(event, _SCHEDULING_KINDS[event_type])
            elif event_type in COMPLETION_KEYS:
                self._complete(event, event_type)
            elif event_type == HistoryEventType.EVENT_RAISED:
                self._raise_event(event)
        if not started:
            raise ReplayError("history has no ExecutionStarted event")
        return ReplayResult(
            new_work=tuple(self._unconfirmed.values()),
            cancelled_timers=frozenset(self.cancelled_timers),
        )


def _describe_event(kind: WorkKind, event: Event) -> str:
    if kind == "timer":
        return f"a timer (fireAt {event.get('FireAt')})"
    label = "activity" if kind == "activity" else "sub-orchestration"
    return f"{label} '{event.get('Name')}'"


def _describe_work(work: NewWork) -> str:
    if work.kind == "timer":
        return "a timer"
    label = "activity" if work.kind == "activity" else "sub-orchestration"
    return f"{label} '{work.name}'"


def replay(
    history: Sequence[Event],
    state: OrchestratorState,
    *,
    instance_id: str,
    has_activity: Callable[[str], bool],
    has_orchestrator: Callable[[str], bool],
) -> ReplayResult:
    """Re-execute ``state``'s actions against ``history`` (which includes this episode's new events).

    Returns the actions the history has not recorded yet, numbered as the SDK numbers them, and
    the timers the orchestrator has cancelled. Raises ReplayError subclasses on non-determinism,
    unknown functions or unsupported actions.
    """
    simulation = _Simulation(instance_id, has_activity, has_orchestrator)
    if state.schema_version == 0:
        script = simulation.script_v1(state.action_sets)
    else:
        script = simulation.script_v2(state.action_sets[0] if state.action_sets else ())
    return simulation.run(history, script)
