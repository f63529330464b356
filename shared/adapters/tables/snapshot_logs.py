"""The SnapshotLogs port on the environments table: one row per environment, `snap:{id}` in its
owner's partition (outside the `env:` range the record queries read), holding the snapshot list
as chunked JSON text. Replaced with If-Match, so two reports racing cannot drop a snapshot."""

from __future__ import annotations

import json

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.adapters.tables import rows, writes
from shared.adapters.tables.client import Tables, if_match
from shared.adapters.tables.rows import Row, utc
from shared.domain.snapshots import Snapshot, SnapshotLog
from shared.errors import ConcurrencyConflict

SNAPSHOT_PREFIX = "snap:"


def snapshot_row(environment_id: str) -> str:
    return SNAPSHOT_PREFIX + rows.check_environment_id(environment_id)


class TableSnapshotLogs:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._envs = tables.environments

    def snapshot_log(self, owner: str, environment_id: str) -> SnapshotLog:
        row = self._tables.point(self._envs, rows.owner_key(owner), snapshot_row(environment_id))
        if row is None:
            return SnapshotLog()
        listed = json.loads(rows.get_text(row, "snapshots") or "[]")
        pruned = row.get("pruned_at")
        return SnapshotLog(
            snapshots=[Snapshot.model_validate(item) for item in listed],
            pruned_at=utc(pruned) if pruned is not None else None,
            etag=row.etag,
        )

    def save_snapshot_log(self, owner: str, environment_id: str, log: SnapshotLog) -> SnapshotLog:
        """Write `log` if the row is as it was read (`log.etag`; None: the row must not exist)."""
        row: Row = {"PartitionKey": rows.owner_key(owner), "RowKey": snapshot_row(environment_id)}
        rows.put_text(row, "snapshots", json.dumps([snap.model_dump(mode="json") for snap in log.snapshots]))
        if log.pruned_at is not None:
            row["pruned_at"] = utc(log.pruned_at)
        self._tables.stats.add("writes")
        try:
            if log.etag is None:
                result = writes.create(self._envs, row)
            else:
                result = writes.update(self._envs, row, mode=UpdateMode.REPLACE, **if_match(log.etag))
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrencyConflict("the snapshot log changed since it was read") from None
        return log.model_copy(update={"etag": result["etag"]})
