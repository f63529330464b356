"""Lifecycle rules: which command moves an environment where. Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.environment import Status


class Command(StrEnum):
    START = "start"
    STOP = "stop"
    DELETE = "delete"


class Verdict(StrEnum):
    TRANSITION = "transition"  # accepted: move to `target` and run the command's orchestration
    NOOP = "noop"  # already there: answer 200 and change nothing
    REFUSED = "refused"  # 409 INVALID_STATE


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    target: Status | None = None
    reason: str = ""


TRANSITIONAL = frozenset({Status.CREATING, Status.STARTING, Status.STOPPING, Status.DELETING})
# Statuses of an operation bringing the compute up: theirs are the progress phases and timings.
COMING_UP = frozenset({Status.CREATING, Status.STARTING})
# Statuses that hold compute and so count against DEV8_MAX_RUNNING_PER_USER.
ACTIVE = frozenset({Status.CREATING, Status.STARTING, Status.RUNNING})

# Every edge a record may take (the store refuses any other write).
EDGES: dict[Status, frozenset[Status]] = {
    Status.CREATING: frozenset({Status.RUNNING, Status.ERROR}),
    Status.STARTING: frozenset({Status.RUNNING, Status.ERROR}),
    Status.RUNNING: frozenset({Status.STOPPING, Status.DELETING}),
    Status.STOPPING: frozenset({Status.STOPPED, Status.ERROR}),
    Status.STOPPED: frozenset({Status.STARTING, Status.DELETING}),
    Status.ERROR: frozenset({Status.STARTING, Status.DELETING}),
    Status.DELETING: frozenset({Status.DELETED, Status.ERROR}),
    Status.DELETED: frozenset(),
}
# Statuses no edge leads back to: a record holds them once, from its first write (CREATING).
ENTERED_ONCE = frozenset(set(Status) - {target for targets in EDGES.values() for target in targets})

_ACCEPTS: dict[Command, dict[Status, Status]] = {
    Command.START: {Status.STOPPED: Status.STARTING, Status.ERROR: Status.STARTING},
    Command.STOP: {Status.RUNNING: Status.STOPPING},
    Command.DELETE: {
        Status.RUNNING: Status.DELETING,
        Status.STOPPED: Status.DELETING,
        Status.ERROR: Status.DELETING,
    },
}
_ALREADY_THERE: dict[Command, Status] = {Command.START: Status.RUNNING, Command.STOP: Status.STOPPED}


def decide(status: Status, command: Command) -> Decision:
    """What a user command does to an environment in `status`."""
    target = _ACCEPTS[command].get(status)
    if target is not None:
        return Decision(Verdict.TRANSITION, target)
    if _ALREADY_THERE.get(command) is status:
        return Decision(Verdict.NOOP, status)
    if status in TRANSITIONAL:
        why = f"environment is {status.value}; wait for the current operation to finish"
    elif status is Status.DELETED:
        why = "environment is deleted"
    else:
        why = f"cannot {command.value} an environment that is {status.value}"
    return Decision(Verdict.REFUSED, None, why)


def can_move(source: Status | None, target: Status) -> bool:
    """Whether a record may be written from `source` to `target` (None: a new record)."""
    if source is None:
        return target is Status.CREATING
    return source is target or target in EDGES[source]


def settle(status: Status, succeeded: bool) -> Status:
    """Where a transitional status lands when its orchestration ends."""
    if status not in TRANSITIONAL:
        raise ValueError(f"{status.value} is not transitional")
    if not succeeded:
        return Status.ERROR
    return {
        Status.CREATING: Status.RUNNING,
        Status.STARTING: Status.RUNNING,
        Status.STOPPING: Status.STOPPED,
        Status.DELETING: Status.DELETED,
    }[status]


def settled_fields(
    status: Status, now: datetime, restorable_days: int | None, given: dict[str, Any]
) -> dict[str, Any]:
    """What else changes when a record settles in `status` (`given` fields win)."""
    extra = dict(given)
    if status in (Status.STOPPED, Status.ERROR, Status.DELETED):
        # No URL to offer until it runs again (ACI may even hand out a new address on start).
        extra.setdefault("vs_code_url", None)
        extra.setdefault("ssh_connection_string", None)
    if status is Status.STOPPED:
        extra.setdefault("stopped_at", now)
    if restorable_days is not None:
        extra["restorable_until"] = now + timedelta(days=restorable_days)
    if status is Status.RUNNING:
        extra.setdefault("started_at", now)
        extra.setdefault("last_accessed_at", now)
        extra.setdefault("stopped_at", None)
    return extra
