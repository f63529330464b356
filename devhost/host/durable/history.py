"""History events in the JSON shape the Durable extension hands to the Python SDK.

Each event is a plain dict with PascalCase keys (``EventType``, ``EventId``, ``IsPlayed``,
``Timestamp`` plus type-specific fields), exactly what ``azure.durable_functions`` parses in
``HistoryEvent(**event)``. Events that are not the result of an orchestrator action carry
``EventId`` -1, as in the Durable Task Framework.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

Event = dict[str, Any]

# The SDK's own wire format for datetimes (microseconds + "Z"), so parsed values are UTC-aware.
_WIRE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Events that answer an earlier action, keyed by the field naming that action's EventId.
COMPLETION_KEYS: dict[int, str] = {
    HistoryEventType.TASK_COMPLETED: "TaskScheduledId",
    HistoryEventType.TASK_FAILED: "TaskScheduledId",
    HistoryEventType.TIMER_FIRED: "TimerId",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED: "TaskScheduledId",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED: "TaskScheduledId",
}


def format_time(when: datetime) -> str:
    """Serialize a datetime the way history and actions carry it."""
    return when.astimezone(UTC).strftime(_WIRE_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time from history, actions or a query string into UTC-aware datetime."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _event(event_type: HistoryEventType, when: datetime, event_id: int = -1, **fields: Any) -> Event:
    event: Event = {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_time(when),
    }
    event.update(fields)
    return event


def orchestrator_started(when: datetime) -> Event:
    return _event(HistoryEventType.ORCHESTRATOR_STARTED, when)


def orchestrator_completed(when: datetime) -> Event:
    return _event(HistoryEventType.ORCHESTRATOR_COMPLETED, when)


def execution_started(
    when: datetime,
    name: str,
    instance_id: str,
    execution_id: str,
    serialized_input: str | None,
    parent: dict[str, Any] | None = None,
) -> Event:
    # The SDK reads ``Version`` from this event, so it must be present even when empty.
    return _event(
        HistoryEventType.EXECUTION_STARTED,
        when,
        Name=name,
        Version="",
        Input=serialized_input,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
    )


def execution_completed(when: datetime, status: str, result_json: str | None) -> Event:
    return _event(
        HistoryEventType.EXECUTION_COMPLETED,
        when,
        OrchestrationStatus=status,
        Result=result_json,
        FailureDetails=None,
    )


def execution_terminated(when: datetime, reason: str | None) -> Event:
    return _event(HistoryEventType.EXECUTION_TERMINATED, when, Input=reason)


def task_scheduled(when: datetime, event_id: int, name: str, input_json: str | None) -> Event:
    return _event(HistoryEventType.TASK_SCHEDULED, when, event_id, Name=name, Version="", Input=input_json)


def task_completed(when: datetime, task_id: int, result_json: str) -> Event:
    return _event(HistoryEventType.TASK_COMPLETED, when, TaskScheduledId=task_id, Result=result_json)


def task_failed(when: datetime, task_id: int, reason: str, details: str | None) -> Event:
    return _event(HistoryEventType.TASK_FAILED, when, TaskScheduledId=task_id, Reason=reason, Details=details)


def timer_created(when: datetime, event_id: int, fire_at: datetime) -> Event:
    return _event(HistoryEventType.TIMER_CREATED, when, event_id, FireAt=format_time(fire_at))


def timer_fired(when: datetime, timer_id: int, fire_at: datetime) -> Event:
    return _event(HistoryEventType.TIMER_FIRED, when, TimerId=timer_id, FireAt=format_time(fire_at))


def event_raised(when: datetime, name: str, input_json: str | None) -> Event:
    return _event(HistoryEventType.EVENT_RAISED, when, Name=name, Input=input_json)


def sub_orchestration_created(
    when: datetime, event_id: int, name: str, instance_id: str, input_json: str | None
) -> Event:
    return _event(
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
        when,
        event_id,
        Name=name,
        Version="",
        InstanceId=instance_id,
        Input=input_json,
    )


def sub_orchestration_completed(when: datetime, task_id: int, result_json: str | None) -> Event:
    return _event(
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
        when,
        TaskScheduledId=task_id,
        Result=result_json,
    )


def sub_orchestration_failed(when: datetime, task_id: int, reason: str, details: str | None) -> Event:
    return _event(
        HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
        when,
        TaskScheduledId=task_id,
        Reason=reason,
        Details=details,
    )


def event_type(event: Event) -> HistoryEventType:
    return HistoryEventType(event["EventType"])


def completed_ids(events: list[Event]) -> set[int]:
    """Ids of actions (tasks, timers, sub-orchestrations) already answered in ``events``."""
    done: set[int] = set()
    for event in events:
        key = COMPLETION_KEYS.get(event["EventType"])
        if key is not None:
            done.add(int(event[key]))
    return done
