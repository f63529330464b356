"""Operations: one lifecycle change of one environment, carried out by one orchestration.

The only place that knows how an operation id is written and read, which orchestration instance
runs it and which orchestrator function that is. Ids are deterministic (environment, kind,
record version), so a retried start cannot run the same operation twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CREATE = "create"
    START = "start"
    STOP = "stop"
    DELETE = "delete"
    RETIRE = "retire"  # retention's delete: the workspace is snapshotted first and kept a while
    RESTART = "restart"  # a stop that starts again once stopped (a resize asked while running)


# The status_reason of a restart's STOPPED, between its stop and its start being accepted (a few
# milliseconds, but a client polling for RUNNING can see it: the CLI and the TypeScript client wait
# on through it). A start that is refused replaces it with why (activities.start_after_restart).
STOPPED_TO_RESTART = "stopped to restart"

# The orchestrator function that carries out each kind (its registered name).
PROVISION = "provision_environment"
START = "start_environment"
STOP = "stop_environment"
DELETE = "delete_environment"
RETIRE = "retire_environment"
RESTART = "restart_environment"
PURGE = "purge_retired_workspace"  # not an operation on the record: the end of a restore window
FORGET = "forget_owner"  # an owner's DELETE /me: every environment deleted, then their rows erased

ORCHESTRATOR: dict[Kind, str] = {
    Kind.CREATE: PROVISION,
    Kind.START: START,
    Kind.STOP: STOP,
    Kind.DELETE: DELETE,
    Kind.RETIRE: RETIRE,
    Kind.RESTART: RESTART,
}


@dataclass(frozen=True, slots=True)
class Operation:
    environment_id: str
    kind: Kind
    version: int  # the record version that accepted it

    @property
    def id(self) -> str:
        return f"{self.environment_id}-{self.kind.value}-{self.version}"

    @classmethod
    def parse(cls, operation_id: str) -> Operation:
        """Read an id back (environment ids contain dashes: split from the right)."""
        environment_id, kind, version = operation_id.rsplit("-", 2)
        return cls(environment_id, Kind(kind), int(version))


def operation_id(kind: Kind, environment_id: str, version: int) -> str:
    return Operation(environment_id, kind, version).id


def orchestrator(operation_id: str) -> str:
    """The orchestrator function that carries out the operation."""
    return ORCHESTRATOR[Operation.parse(operation_id).kind]


def instance_id(operation_id: str, redrives: int = 0) -> str:
    """The orchestration instance carrying out the operation; a re-drive runs the same operation
    under a new instance id (`.r1`), since the first one may still be recorded as failed."""
    return operation_id if redrives == 0 else f"{operation_id}.r{redrives}"


def purge_instance_id(environment_id: str) -> str:
    """The one purge of a retired environment's workspace (a second start is refused while it runs)."""
    return f"{environment_id}-purge"


def forget_instance_id(owner: str) -> str:
    """The one erasure of an owner's data at a time (the id names no owner: a digest of it)."""
    return "forget-" + hashlib.sha256(owner.encode()).hexdigest()[:32]
