"""Table Storage adapter of the EnvironmentRecords port; the SweepIndex, OrphanLedger, SnapshotLogs,
ResourceSamples and Erasure ports of the same account are its `index` (status_index.py), `orphans`
(orphans.py), `snapshot_logs` (snapshot_logs.py), `samples` (samples.py, a table of its own) and
`erasure` (erasure.py).

`{prefix}Environments` holds one partition per owner with rows `env:{id}` (the record),
`evt:{id}:{n}` (audit events, newest first), `idem:{sha256}` (idempotency) and `usage` (quota
counters). Every write that must agree with another (record, event, usage, idempotency) is one
entity-group transaction; the usage row is guarded by its ETag, so quota holds under concurrent
writers, and the writers of one owner in this process take turns (turns.py). The status index
row is announced ahead of the commit and retired after it.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode

from shared.adapters.tables import batch, rows, writes
from shared.adapters.tables.client import (
    MAX_ATTEMPTS,
    RACE_CODES,
    Tables,
    backoff,
    environment_configures_http,
    error_code,
    failed_operation,
    if_match,
    nothing_committed,
    service_from_settings,
)
from shared.adapters.tables.erasure import TableErasure
from shared.adapters.tables.loop import Opener, opener_from_settings
from shared.adapters.tables.orphans import TableOrphanLedger
from shared.adapters.tables.rows import Row, utc
from shared.adapters.tables.samples import TableResourceSamples
from shared.adapters.tables.snapshot_logs import TableSnapshotLogs
from shared.adapters.tables.status_index import StatusIndex
from shared.adapters.tables.turns import OwnerTurns, Turn, UsageState
from shared.adapters.tables.wire import Entity
from shared.domain.environment import AuditEvent, Environment, Status
from shared.domain.lifecycle import ACTIVE, can_move
from shared.domain.quota import Limits, Usage, admit
from shared.errors import ConcurrencyConflict, QuotaExceeded
from shared.services.ports import Change, IdempotencyRecord

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)

Operation = tuple[str, Row] | tuple[str, Row, dict[str, Any]]


class TableEnvironmentStore:
    """The environment records on Azure Table Storage (or Azurite), with `index` and `orphans`.
    Thread-safe; share one per process."""

    def __init__(
        self,
        service: TableServiceClient,
        prefix: str = "dev8",
        *,
        pending_grace: timedelta = timedelta(minutes=10),
        open_async: Opener | None = None,
    ) -> None:
        self._tables = Tables(service, prefix, open_async)
        self.environments_table = self._tables.environments_table
        self.index_table = self._tables.index_table
        self.table_names = (self.environments_table, self.index_table, self._tables.samples_table)
        self.stats = self._tables.stats
        self._envs = self._tables.environments
        # The other ports on the same tables, each its own object (wiring hands them out).
        self.index = StatusIndex(self._tables, pending_grace, self.get)
        self.orphans = TableOrphanLedger(self._tables)
        self.snapshot_logs = TableSnapshotLogs(self._tables)
        self.samples = TableResourceSamples(self._tables)
        self.erasure = TableErasure(self._tables)
        self._point = self._tables.point
        self._query = self._tables.query
        self._turns = OwnerTurns()

    @classmethod
    def from_settings(cls, settings: Settings) -> TableEnvironmentStore:
        open_async = opener_from_settings(settings, environment_configures_http())
        return cls(service_from_settings(settings), settings.table_prefix, open_async=open_async)

    def ensure_tables(self) -> None:
        self._tables.ensure()

    def ping(self) -> None:
        """Raise when Table Storage cannot be reached (readiness)."""
        self._tables.ping()

    # --- reads ----------------------------------------------------------------------------------

    def get(self, owner: str, environment_id: str) -> Environment | None:
        row = self._point(self._envs, rows.owner_key(owner), rows.env_row(environment_id))
        return rows.environment_from(row, row.etag) if row is not None else None

    async def get_async(self, owner: str, environment_id: str) -> Environment | None:
        row = await self._tables.point_async(
            self.environments_table, rows.owner_key(owner), rows.env_row(environment_id)
        )
        return rows.environment_from(row, row.etag) if row is not None else None

    def list(self, owner: str, live: bool = False) -> builtins.list[Environment]:
        return _oldest_first(self._record_rows(rows.owner_key(owner), live))

    async def list_async(self, owner: str, live: bool = False) -> builtins.list[Environment]:
        query, parameters = _records_query(rows.owner_key(owner), live)
        return _oldest_first(await self._tables.query_async(self.environments_table, query, parameters))

    def restorable(self, owner: str, now: datetime) -> builtins.list[Environment]:
        query, parameters = _records_query(rows.owner_key(owner), live=False)
        query += " and status eq @deleted and restorable_until gt @now"
        found = self._query(
            self._envs, query, {**parameters, "deleted": Status.DELETED.value, "now": rows.utc(now)}
        )
        return _oldest_first(found)

    def _record_rows(
        self, partition: str, live: bool, select: builtins.list[str] | None = None
    ) -> Iterator[Entity]:
        return self._query(self._envs, *_records_query(partition, live), select=select)

    def usage(self, owner: str) -> Usage:
        row = self._point(self._envs, rows.owner_key(owner), rows.USAGE_ROW)
        return rows.usage_from(row) if row is not None else Usage()

    def events(
        self, owner: str, environment_id: str, limit: int = 100, before: int | None = None
    ) -> builtins.list[AuditEvent]:
        if limit <= 0 or (before is not None and before <= 1):
            return []  # version 1 is the first event: nothing is older
        if before is not None and before >= rows.INVERT:
            before = None  # every event is older than a version the row keys cannot hold
        prefix = rows.event_prefix(environment_id)
        # Row keys hold the inverted version, so older events sort after newer ones.
        after, low = ("gt", rows.event_row(environment_id, before)) if before is not None else ("ge", prefix)
        found = self._query(
            self._envs,
            f"PartitionKey eq @pk and RowKey {after} @low and RowKey lt @high",
            {"pk": rows.owner_key(owner), "low": low, "high": rows.after_prefix(prefix)},
            page_size=min(limit, 1000),
        )
        return [rows.event_from(row) for row in islice(found, limit)]

    def idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        row = self._point(self._envs, rows.owner_key(owner), rows.idempotency_row(key))
        return rows.idempotency_from(row) if row is not None else None

    # --- writes ---------------------------------------------------------------------------------

    def create(
        self,
        environment: Environment,
        change: Change,
        limits: Limits,
        idempotency: IdempotencyRecord | None = None,
    ) -> Environment:
        if not can_move(None, environment.status):
            raise ValueError(f"a new environment must be {Status.CREATING.value}")
        owner, partition = environment.owner, rows.owner_key(environment.owner)
        record = environment.model_copy(update={"version": 1, "etag": None})
        event = AuditEvent(
            environment_id=record.id,
            from_status=None,
            to_status=record.status,
            actor=change.actor,
            reason=change.reason,
            at=change.at,
        )
        fixed: builtins.list[Operation] = [
            ("create", rows.environment_row(partition, record)),
            ("create", rows.event_row_for(partition, event, owner, record.version)),
        ]
        if idempotency is not None:
            fixed.append(("create", rows.idempotency_row_for(partition, owner, idempotency)))
        with self._turns.take(partition) as turn:
            usage = turn.take_usage() or self._current_usage(partition)
            # Refuse over-quota requests before writing anything, index included.
            admit(usage[1], None, record.status, limits)
            self.index.register(record)
            announced = self.index.announce(record, None)
            try:
                for attempt in range(MAX_ATTEMPTS):
                    if attempt:
                        backoff(attempt)
                        usage = self._current_usage(partition)
                    after = admit(usage[1], None, record.status, limits)
                    operations = [*fixed, self._usage_operation(partition, owner, usage[0], after)]
                    try:
                        result = self._commit(operations)
                    except TableTransactionError as error:
                        if self._usage_lost(error, operations, partition, record.id, idempotency):
                            continue
                        if error_code(error) == "EntityAlreadyExists":
                            raise ConcurrencyConflict(
                                "the environment or idempotency key already exists"
                            ) from error
                        raise
                    turn.usage = (result[-1]["etag"], after)  # for the owner's next writer
                    return record.model_copy(update={"etag": result[0]["etag"]})
                raise ConcurrencyConflict("the owner's usage kept changing; try again")
            except (QuotaExceeded, ConcurrencyConflict, HttpResponseError) as error:
                if nothing_committed(error):
                    self.index.withdraw(announced)
                raise

    def save(
        self, previous: Environment, updated: Environment, change: Change, limits: Limits | None = None
    ) -> Environment:
        if not can_move(previous.status, updated.status):
            raise ValueError(f"{previous.status.value} -> {updated.status.value} is not a lifecycle edge")
        if (updated.id, updated.owner) != (previous.id, previous.owner):
            raise ValueError("save cannot change an environment's id or owner")
        if previous.etag is None:
            raise ValueError("previous has no ETag; save a record read from the store")
        owner, partition = previous.owner, rows.owner_key(previous.owner)
        record = updated.model_copy(
            update={"version": previous.version + 1, "updated_at": change.at, "etag": None}
        )
        moved = previous.status is not record.status
        replace = {"mode": UpdateMode.REPLACE, **if_match(previous.etag)}
        fixed: builtins.list[Operation] = [("update", rows.environment_row(partition, record), replace)]
        if moved or change.audited:
            event = AuditEvent(
                environment_id=record.id,
                from_status=previous.status,
                to_status=record.status,
                actor=change.actor,
                reason=change.reason,
                at=change.at,
            )
            fixed.append(("create", rows.event_row_for(partition, event, owner, record.version)))
        counted = Usage().after(previous.status, record.status) != Usage()
        with self._turns.take(partition) if counted else contextlib.nullcontext() as turn:
            usage: UsageState | None = None
            if turn is not None:
                usage = turn.take_usage() or self._current_usage(partition)
                if limits is not None:  # refuse before writing anything, index included
                    admit(usage[1], previous.status, record.status, limits)
            announced = self.index.announce(record, previous)
            try:
                if turn is not None and usage is not None:
                    result = self._save_with_usage(
                        partition, owner, fixed, previous.status, record.status, limits, usage, turn
                    )
                else:
                    result = self._commit_record(fixed)
            except (QuotaExceeded, ConcurrencyConflict, HttpResponseError) as error:
                if nothing_committed(error):
                    self.index.withdraw(announced)
                raise
        if moved:
            self.index.retire(previous.status, record)
        return record.model_copy(update={"etag": result[0]["etag"]})

    def touch(self, owner: str, environment_id: str, at: datetime) -> None:
        """Merge last_accessed_at, never backwards. The ETag check makes concurrent touches safe
        (an older time cannot overwrite a newer one); the index's idle_stop_at may lag behind."""
        at = utc(at)
        partition, row_key = rows.owner_key(owner), rows.env_row(environment_id)
        for _ in range(MAX_ATTEMPTS):
            row = self._point(self._envs, partition, row_key, select=["last_accessed_at"])
            if row is None:
                return
            current = row.get("last_accessed_at")
            if current is not None and utc(current) >= at:
                return
            patch = {"PartitionKey": partition, "RowKey": row_key, "last_accessed_at": at}
            try:
                self.stats.add("writes")
                writes.update(self._envs, patch, mode=UpdateMode.MERGE, **if_match(row.etag))
                return
            except ResourceModifiedError:
                continue  # someone wrote meanwhile: re-read and compare again
            except ResourceNotFoundError:
                return

    # --- transactions ---------------------------------------------------------------------------

    def _save_with_usage(
        self,
        partition: str,
        owner: str,
        fixed: builtins.list[Operation],
        source: Status,
        target: Status,
        limits: Limits | None,
        usage: UsageState,
        turn: Turn,
    ) -> builtins.list[Mapping[str, Any]]:
        """Commit a status change that moves the owner's counters, retrying only usage races;
        the row as written is left on the owner's `turn` for the next writer."""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                backoff(attempt)
                usage = self._current_usage(partition)
            counts = usage[1]
            after = (
                admit(counts, source, target, limits) if limits is not None else counts.after(source, target)
            )
            operations = [*fixed, self._usage_operation(partition, owner, usage[0], after)]
            try:
                result = self._commit(operations)
                turn.usage = (result[-1]["etag"], after)
                return result
            except TableTransactionError as error:
                code = error_code(error)
                if code in RACE_CODES and failed_operation(error, len(operations)) == len(operations) - 1:
                    continue  # only the usage row raced: re-read it and decide again
                if code in RACE_CODES:  # the record's ETag (or an unknown operation): re-read
                    raise ConcurrencyConflict("the environment changed since it was read") from error
                raise
        raise ConcurrencyConflict("the owner's usage kept changing; try again")

    def _commit_record(self, operations: builtins.list[Operation]) -> builtins.list[Mapping[str, Any]]:
        if len(operations) == 1:
            return [self._replace(operations[0])]
        try:
            return self._commit(operations)
        except TableTransactionError as error:
            if error_code(error) in RACE_CODES:
                raise ConcurrencyConflict("the environment changed since it was read") from error
            raise

    def _replace(self, operation: Operation) -> Mapping[str, Any]:
        """One conditional update alone, as a plain request: one write is atomic by itself, and the
        cheapest transaction (batch.py) still costs more than the plain request."""
        assert operation[0] == "update" and len(operation) == 3
        _, row, options = operation
        self.stats.add("writes")
        try:
            return writes.update(self._envs, row, **options)
        except (ResourceModifiedError, ResourceNotFoundError) as error:
            raise ConcurrencyConflict("the environment changed since it was read") from error

    def _usage_lost(
        self,
        error: TableTransactionError,
        operations: builtins.list[Operation],
        partition: str,
        environment_id: str,
        idempotency: IdempotencyRecord | None,
    ) -> bool:
        """Whether a create batch failed only because the usage row (the last operation) raced."""
        if error_code(error) not in RACE_CODES:
            return False
        failed = failed_operation(error, len(operations))
        if failed is not None:
            return failed == len(operations) - 1
        # No index in the answer: the usage row raced unless the record or the key already exists.
        taken = self._point(self._envs, partition, rows.env_row(environment_id)) is not None
        if idempotency is not None:
            taken = (
                taken or self._point(self._envs, partition, rows.idempotency_row(idempotency.key)) is not None
            )
        return not taken

    def _commit(self, operations: builtins.list[Operation]) -> builtins.list[Mapping[str, Any]]:
        self.stats.add("transactions")
        return batch.submit(self._envs, operations)

    def _current_usage(self, partition: str) -> UsageState:
        row = self._point(self._envs, partition, rows.USAGE_ROW)
        if row is not None:
            return row.etag, rows.usage_from(row)
        # No counters yet (a new owner, or a lost row): count the records so quota stays exact.
        live = [Status(row["status"]) for row in self._record_rows(partition, live=True, select=["status"])]
        return None, Usage(environments=len(live), active=sum(status in ACTIVE for status in live))

    @staticmethod
    def _usage_operation(partition: str, owner: str, current: str | None, after: Usage) -> Operation:
        """Write the counters over the row of ETag `current` (None: there is no row yet)."""
        row = rows.usage_row_for(partition, owner, after)
        if current is None:
            return ("create", row)  # a concurrent first write loses with EntityAlreadyExists
        return ("update", row, {"mode": UpdateMode.REPLACE, **if_match(current)})


def _records_query(partition: str, live: bool) -> tuple[str, dict[str, Any]]:
    """The rows of one owner's records; `live`: the service leaves out the DELETED ones (kept for
    good) instead of sending them."""
    query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
    parameters = {"pk": partition, "low": rows.ENV_PREFIX, "high": rows.after_prefix(rows.ENV_PREFIX)}
    if live:
        query += " and status ne @deleted"
        parameters["deleted"] = Status.DELETED.value
    return query, parameters


def _oldest_first(found: Iterable[Entity]) -> builtins.list[Environment]:
    records = [rows.environment_from(row, row.etag) for row in found]
    return sorted(records, key=lambda env: (env.created_at, env.id))  # RowKeys sort by id
