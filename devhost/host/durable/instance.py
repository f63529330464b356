"""One orchestration instance: identity, status, and its JSON history (the source of truth).

``input`` is kept the way the Durable extension stores it: the serialized JSON of the value the
client sent. The Python client sends ``df_dumps(input)`` as a JSON *string*, so for Python-started
instances ``input`` is a JSON string literal whose content is the JSON of the real input; the
orchestrator's context gets the decoded string and the SDK decodes it once more. That is also why
the status API shows Python-started inputs as strings, like the real host does.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from devhost.host.durable.history import Event, format_time, parse_time


class RuntimeStatus(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    TERMINATED = "Terminated"

    @property
    def is_terminal(self) -> bool:
        return self in (RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.TERMINATED)


@dataclass(frozen=True)
class ParentLink:
    """Where a sub-orchestration reports its result."""

    instance_id: str
    execution_id: str
    task_id: int


@dataclass(frozen=True)
class InstanceStatus:
    """A consistent snapshot of an instance, safe to hand out of the engine's lock."""

    instance_id: str
    name: str
    runtime_status: RuntimeStatus
    input: Any
    output: Any
    custom_status: Any
    created_time: datetime
    last_updated_time: datetime
    history: tuple[Event, ...]
    parent_instance_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.runtime_status.is_terminal


@dataclass
class Instance:
    instance_id: str
    name: str
    execution_id: str
    input: str | None
    created_time: datetime
    last_updated_time: datetime
    runtime_status: RuntimeStatus = RuntimeStatus.PENDING
    output: Any = None
    custom_status: Any = None
    history: list[Event] = field(default_factory=list)
    # Events that arrived since the last episode; the next episode delivers them as new.
    inbox: list[Event] = field(default_factory=list)
    cancelled_timers: set[int] = field(default_factory=set)
    parent: ParentLink | None = None

    def input_value(self) -> Any:
        """The input as the orchestrator context receives it (one JSON decode of the stored form)."""
        return None if self.input is None else json.loads(self.input)

    def snapshot(self) -> InstanceStatus:
        return InstanceStatus(
            instance_id=self.instance_id,
            name=self.name,
            runtime_status=self.runtime_status,
            input=self.input_value(),
            output=copy.deepcopy(self.output),
            custom_status=copy.deepcopy(self.custom_status),
            created_time=self.created_time,
            last_updated_time=self.last_updated_time,
            history=tuple(copy.deepcopy(self.history)),
            parent_instance_id=self.parent.instance_id if self.parent else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "name": self.name,
            "executionId": self.execution_id,
            "input": self.input,
            "createdTime": format_time(self.created_time),
            "lastUpdatedTime": format_time(self.last_updated_time),
            "runtimeStatus": self.runtime_status.value,
            "output": self.output,
            "customStatus": self.custom_status,
            "history": self.history,
            "inbox": self.inbox,
            "cancelledTimers": sorted(self.cancelled_timers),
            "parent": (
                {
                    "instanceId": self.parent.instance_id,
                    "executionId": self.parent.execution_id,
                    "taskId": self.parent.task_id,
                }
                if self.parent
                else None
            ),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Instance:
        parent_raw = raw.get("parent")
        return cls(
            instance_id=str(raw["instanceId"]),
            name=str(raw["name"]),
            execution_id=str(raw["executionId"]),
            input=raw.get("input"),
            created_time=parse_time(raw["createdTime"]),
            last_updated_time=parse_time(raw["lastUpdatedTime"]),
            runtime_status=RuntimeStatus(raw["runtimeStatus"]),
            output=raw.get("output"),
            custom_status=raw.get("customStatus"),
            history=list(raw.get("history") or []),
            inbox=list(raw.get("inbox") or []),
            cancelled_timers={int(t) for t in raw.get("cancelledTimers") or []},
            parent=(
                ParentLink(
                    instance_id=str(parent_raw["instanceId"]),
                    execution_id=str(parent_raw["executionId"]),
                    task_id=int(parent_raw["taskId"]),
                )
                if parent_raw
                else None
            ),
        )
