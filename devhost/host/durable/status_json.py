"""Status payloads in the shape of the Durable extension's HTTP API.

``historyEvents`` follows the host's summarized form: event types as names, bookkeeping events
(OrchestratorStarted/Completed, TaskScheduled, SubOrchestrationInstanceCreated) folded into the
completions (``FunctionName``, ``ScheduledTime``), payloads only with ``showHistoryOutput``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from devhost.host.durable.history import Event
from devhost.host.durable.instance import InstanceStatus

_HIDDEN = {
    HistoryEventType.ORCHESTRATOR_STARTED,
    HistoryEventType.ORCHESTRATOR_COMPLETED,
    HistoryEventType.TASK_SCHEDULED,
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
}
_PAYLOAD_KEYS = ("Input", "Result")
_TYPE_NAMES = {
    HistoryEventType.EXECUTION_STARTED: "ExecutionStarted",
    HistoryEventType.EXECUTION_COMPLETED: "ExecutionCompleted",
    HistoryEventType.EXECUTION_FAILED: "ExecutionFailed",
    HistoryEventType.EXECUTION_TERMINATED: "ExecutionTerminated",
    HistoryEventType.TASK_COMPLETED: "TaskCompleted",
    HistoryEventType.TASK_FAILED: "TaskFailed",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED: "SubOrchestrationInstanceCompleted",
    HistoryEventType.SUB_ORCHESTRATION_INSTANCE_FAILED: "SubOrchestrationInstanceFailed",
    HistoryEventType.TIMER_CREATED: "TimerCreated",
    HistoryEventType.TIMER_FIRED: "TimerFired",
    HistoryEventType.EVENT_RAISED: "EventRaised",
    HistoryEventType.EVENT_SENT: "EventSent",
    HistoryEventType.CONTINUE_AS_NEW: "ContinueAsNew",
}


def status_time(when: datetime) -> str:
    """The host's status timestamps: second precision with a Z."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def summarize_history(history: tuple[Event, ...] | list[Event], show_output: bool) -> list[dict[str, Any]]:
    scheduled = {
        int(e["EventId"]): e
        for e in history
        if e["EventType"]
        in (HistoryEventType.TASK_SCHEDULED, HistoryEventType.SUB_ORCHESTRATION_INSTANCE_CREATED)
    }
    summary: list[dict[str, Any]] = []
    for event in history:
        event_type = HistoryEventType(event["EventType"])
        if event_type in _HIDDEN:
            continue
        item: dict[str, Any] = {**event, "EventType": _TYPE_NAMES.get(event_type, event_type.name)}
        for key in ("EventId", "IsPlayed", "OrchestrationInstance", "ParentInstance", "Version"):
            item.pop(key, None)
        if event_type == HistoryEventType.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
        if "TaskScheduledId" in item:
            origin = scheduled.get(int(item.pop("TaskScheduledId")))
            if origin is not None:
                item["FunctionName"] = origin.get("Name")
                item["ScheduledTime"] = origin.get("Timestamp")
        for key in _PAYLOAD_KEYS:
            if key in item:
                if show_output or event_type == HistoryEventType.EXECUTION_TERMINATED:
                    item[key] = _json_value(item[key])
                else:
                    del item[key]
        summary.append(item)
    return summary


def status_payload(
    status: InstanceStatus,
    *,
    show_input: bool = True,
    show_history: bool = False,
    show_history_output: bool = False,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": status.name,
        "instanceId": status.instance_id,
        "runtimeStatus": status.runtime_status.value,
        "input": status.input if show_input else None,
        "customStatus": status.custom_status,
        "output": status.output,
        "createdTime": status_time(status.created_time),
        "lastUpdatedTime": status_time(status.last_updated_time),
    }
    if show_history:
        payload["historyEvents"] = summarize_history(status.history, show_history_output)
    return payload
