"""Episodes: replay and history. An episode hands the orchestrator its history (old events
IsPlayed, a new OrchestratorStarted), parses the state the SDK returns, replays its actions
against the history (devhost.host.durable.replay) and records the new work, completion, failure,
continue-as-new or sub-orchestration it asks for."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.models.ReplaySchema import ReplaySchema

from devhost.host.durable import history as hist
from devhost.host.durable.actions import OrchestratorState, OrchestratorStateError, parse_state
from devhost.host.durable.instance import Instance, ParentLink, RuntimeStatus
from devhost.host.durable.registry import OrchestratorFunction
from devhost.host.durable.replay import NewWork, ReplayError, ReplayResult, replay
from devhost.host.durable.state import EngineState, log

_OOP_MARKER = "\n\n$OutOfProcData$:"  # how the SDK smuggles its state out of a raised exception
_MAX_MESSAGE = 1000


class _OrchestratorCrash(Exception):
    pass


def _timespan(delta: timedelta) -> str:
    """A .NET TimeSpan string ("d.hh:mm:ss"), the form the SDK parses."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}"


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class Episodes(EngineState):
    def _run_next_episode(self) -> None:
        instance_id = self._ready.popleft()
        self._ready_set.discard(instance_id)
        instance = self._instances.get(instance_id)
        if instance is None:
            return
        was_over = instance.runtime_status.is_terminal
        try:
            self._episode(instance)
        except Exception as exc:  # fault isolation: one broken instance never stops the engine
            log.exception("episode of %s crashed", instance_id)
            self._after_save.clear()
            if not instance.runtime_status.is_terminal:
                self._fail(instance, self._clock.now(), f"internal engine error: {type(exc).__name__}: {exc}")
        # One that ended in this episode was saved by _finish, before its parent heard of it.
        self._changed(instance, persist=was_over or not instance.runtime_status.is_terminal)
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
