"""The WorkspaceAgent port as a mailbox on the workspace's share: the one channel that reaches a
running workspace the same way on every backend (ACI offers no call into a container but exec,
and the share is mounted in it at /dev8/share; a local workspace directory is the share).

The core writes `control/{request}.request` holding the reason; the snapshot agent, which looks
at `control/` every few seconds, takes the snapshot, writes `control/{request}.answer` (its JSON
event line) and removes the request. The core reads the answer, then withdraws both files.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

from shared.domain.resources import SNAPSHOT_CONTROL, workspace_name
from shared.domain.snapshots import REQUEST_ID, Reason, SnapshotEvent
from shared.services.ports import WorkspaceStorage


def _path(request_id: str, kind: str) -> str:
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"invalid request id {request_id!r}")
    return f"{SNAPSHOT_CONTROL}/{request_id}.{kind}"  # DEV8_SNAPSHOT_CONTROL tells the agent


class Mailbox:
    def __init__(self, storage: WorkspaceStorage) -> None:
        self._storage = storage

    def ask(self, environment_id: str, request_id: str, reason: Reason | Literal["prune"]) -> None:
        self._storage.write_file(
            workspace_name(environment_id), _path(request_id, "request"), str(reason).encode()
        )

    def answer(self, environment_id: str, request_id: str) -> SnapshotEvent | None:
        data = self._storage.read_file(workspace_name(environment_id), _path(request_id, "answer"))
        if data is None:
            return None
        try:
            return SnapshotEvent.model_validate_json(data.strip().splitlines()[-1] if data.strip() else b"")
        except (ValidationError, IndexError):
            return SnapshotEvent(event="failed")  # an answer, but not one we can read

    def withdraw(self, environment_id: str, request_id: str) -> None:
        name = workspace_name(environment_id)
        for kind in ("request", "answer"):
            self._storage.delete_file(name, _path(request_id, kind))
