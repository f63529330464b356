"""Azure Table Storage adapter of the EnvironmentRecords, SweepIndex and OrphanLedger ports (sync clients).

Tables:
- `{prefix}Environments`: one partition per owner with rows `env:{id}` (the record), `evt:{id}:{n}`
  (audit events, newest first), `idem:{sha256}` (idempotency) and `usage` (quota counters). Every
  write that must agree with another (record, event, usage, idempotency) is one entity-group
  transaction; the usage row is guarded by its ETag, so quota holds under concurrent writers.
- `{prefix}EnvironmentIndex`: PartitionKey = status, RowKey = id; what the sweeps read. It cannot
  join the owner's transaction, so it is kept a SUPERSET of the truth: the row for the new status is
  written ahead of the commit, the old one is removed after it, and a RUNNING row's idle_stop_at
  never claims later than the record's. Each row carries the record version it announces, so a
  repair can tell a write still in flight from a stale row.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, TableTransactionError, UpdateMode

from shared.adapters.tables import rows
from shared.adapters.tables.rows import Row, utc
from shared.domain.environment import AuditEvent, Environment, Status
from shared.domain.lifecycle import ACTIVE, can_move
from shared.domain.quota import Limits, Usage, admit
from shared.errors import ConcurrencyConflict, QuotaExceeded
from shared.services.ports import Change, IdempotencyRecord, IndexEntry

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20  # usage races (and index row races) before giving up with ConcurrencyConflict
Operation = tuple[str, Row] | tuple[str, Row, dict[str, Any]]
# Codes of a lost optimistic race: an ETag mismatch, a row created meanwhile, a row gone meanwhile.
_UsageState = tuple[TableEntity | None, Usage]  # the usage row as read (None: absent) and its counters
_RACE_CODES = frozenset(
    {
        "UpdateConditionNotSatisfied",
        "ConditionNotMet",
        "EntityAlreadyExists",
        "ResourceNotFound",
        "EntityNotFound",
    }
)


@dataclass(slots=True)
class TableStats:
    """Requests made by the adapter (for benchmarks); one query is one page fetched."""

    queries: int = 0
    point_reads: int = 0
    writes: int = 0
    transactions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "queries": self.queries,
                "point_reads": self.point_reads,
                "writes": self.writes,
                "transactions": self.transactions,
            }

    def reset(self) -> None:
        with self._lock:
            self.queries = self.point_reads = self.writes = self.transactions = 0


@dataclass(frozen=True, slots=True)
class _Announcement:
    """An index row written ahead of a commit; withdrawn only if this write created it."""

    status: Status
    environment_id: str
    etag: str
    created: bool


def _etag(row: TableEntity) -> str:
    etag = row.metadata["etag"]
    assert etag is not None  # the service always returns one
    return etag


def _if_match(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _failed_operation(error: TableTransactionError, count: int) -> int | None:
    """Which operation of a batch failed: the service prefixes the message with its index."""
    head = (error.message or "").split(":", 1)[0].strip()
    if head.isdigit() and int(head) < count:
        return int(head)
    return None


def _nothing_committed(error: Exception) -> bool:
    """Whether a failed write certainly changed nothing (a 5xx or a lost answer may hide a commit)."""
    if isinstance(error, HttpResponseError):
        return error.status_code is not None and error.status_code < 500
    return isinstance(error, QuotaExceeded | ConcurrencyConflict)


def _code(error: HttpResponseError) -> str:
    code = getattr(error, "error_code", None)  # set by the tables SDK when it decodes an error
    return str(getattr(code, "value", code) or "")


def _backoff(attempt: int) -> None:
    # Jitter spreads racing writers apart; not security sensitive.
    time.sleep(random.uniform(0, min(0.2, 0.004 * 2**attempt)))  # noqa: S311


def _transport_options() -> dict[str, Any]:
    """Read the environment's HTTP settings once instead of on every table call: `requests`
    re-scans os.environ for proxies per request (measured: about a tenth of a point read's CPU).
    With a proxy or netrc configured, keep its per-request handling (NO_PROXY needs it)."""
    if any("PROXY" in name.upper() or name.upper() == "NETRC" for name in os.environ):
        return {}
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return {"transport": RequestsTransport(session=session, session_owner=False)}


# Index-table partition mapping environment ids to owners (statuses never take this name).
DIRECTORY = "DIRECTORY"
# Index-table partition of orphaned compute: RowKey = compute name, `first_seen` = when the
# reconciler first saw it without a live record. Kept in the table, not in memory, because Flex
# Consumption may recycle the timer's instance between two passes (flex-consumption-plan,
# "Per-function scaling"), and a grace period counted in memory would then never end.
ORPHANS = "ORPHANS"


class TableEnvironmentStore:
    """The records, the sweep index and the orphan ledger on Azure Table Storage (or Azurite).
    Thread-safe; share one per process."""

    def __init__(
        self,
        service: TableServiceClient,
        prefix: str = "dev8",
        *,
        pending_grace: timedelta = timedelta(minutes=10),
    ) -> None:
        self.environments_table = f"{prefix}Environments"
        self.index_table = f"{prefix}EnvironmentIndex"
        self.stats = TableStats()
        self._service = service
        self._envs: TableClient = service.get_table_client(self.environments_table)
        self._index: TableClient = service.get_table_client(self.index_table)
        # How long an index row announcing a newer version than its record is taken as "a write in
        # flight" before a repair treats it as the leftover of a failed write.
        self._pending_grace = pending_grace

    @classmethod
    def from_settings(cls, settings: Settings) -> TableEnvironmentStore:
        options = _transport_options()
        if settings.tables_connection is not None:
            service = TableServiceClient.from_connection_string(
                settings.tables_connection.get_secret_value(), **options
            )
        elif settings.tables_endpoint:
            # Lazy: azure.identity is heavy and only needed with managed identity.
            from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

            credential: Any = (
                ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
                if settings.managed_identity_client_id
                else DefaultAzureCredential()
            )
            service = TableServiceClient(endpoint=settings.tables_endpoint, credential=credential, **options)
        else:
            raise ValueError("DEV8_TABLES_CONNECTION or DEV8_TABLES_ENDPOINT must be set")
        return cls(service, settings.table_prefix)

    def ensure_tables(self) -> None:
        """Create both tables if absent (idempotent)."""
        for name in (self.environments_table, self.index_table):
            self.stats.add("writes")
            self._service.create_table_if_not_exists(name)

    def ping(self) -> None:
        # One empty single-partition page: cheap, and raises if the service or table is unreachable.
        next(self._query(self._envs, "PartitionKey eq @pk", {"pk": "ping"}, page_size=1), None)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, owner: str, environment_id: str) -> Environment | None:
        row = self._point(self._envs, rows.owner_key(owner), rows.env_row(environment_id))
        return rows.environment_from(row, _etag(row)) if row is not None else None

    def list(self, owner: str) -> builtins.list[Environment]:
        found = self._query(
            self._envs,
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            {"pk": rows.owner_key(owner), "low": rows.ENV_PREFIX, "high": rows.after_prefix(rows.ENV_PREFIX)},
        )
        records = [rows.environment_from(row, _etag(row)) for row in found]
        return sorted(records, key=lambda env: (env.created_at, env.id))  # RowKeys sort by id

    def usage(self, owner: str) -> Usage:
        row = self._point(self._envs, rows.owner_key(owner), rows.USAGE_ROW)
        return rows.usage_from(row) if row is not None else Usage()

    def events(self, owner: str, environment_id: str, limit: int = 100) -> builtins.list[AuditEvent]:
        if limit <= 0:
            return []
        prefix = rows.event_prefix(environment_id)
        found = self._query(
            self._envs,
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            {"pk": rows.owner_key(owner), "low": prefix, "high": rows.after_prefix(prefix)},
            page_size=min(limit, 1000),
        )
        return [rows.event_from(row) for row in islice(found, limit)]

    def idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        row = self._point(self._envs, rows.owner_key(owner), rows.idempotency_row(key))
        return rows.idempotency_from(row) if row is not None else None

    def candidates(
        self,
        status: Status,
        idle_before: datetime | None = None,
        started_before: datetime | None = None,
        stopped_before: datetime | None = None,
        restorable_before: datetime | None = None,
    ) -> Iterator[IndexEntry]:
        """Index entries of one status: one single-partition query, filtered server-side."""
        parameters: dict[str, Any] = {"status": status.value}
        due = []
        for column, before, allowed in (
            ("idle_stop_at", idle_before, Status.RUNNING),
            ("started_at", started_before, Status.RUNNING),
            ("stopped_at", stopped_before, Status.STOPPED),
            ("restorable_until", restorable_before, Status.DELETED),
        ):
            if before is None:
                continue
            if status is not allowed:
                raise ValueError(f"{column} deadlines only apply to {allowed.value}")
            due.append(f"{column} le @{column}")
            parameters[column] = utc(before)
        query = "PartitionKey eq @status"
        if due:
            query += " and ( " + " or ".join(due) + " )"  # the SDK reads @names up to a space
        return (rows.index_from(row) for row in self._query(self._index, query, parameters))

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
        # Refuse over-quota requests before writing anything, index included.
        usage_row, usage = self._current_usage(partition)
        admit(usage, None, record.status, limits)
        self._register(record)
        announced = self._announce(record, None)
        try:
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    _backoff(attempt)
                    usage_row, usage = self._current_usage(partition)
                after = admit(usage, None, record.status, limits)
                operations = [*fixed, self._usage_operation(partition, owner, usage_row, after)]
                try:
                    result = self._commit(operations)
                except TableTransactionError as error:
                    if self._usage_lost(error, operations, partition, record.id, idempotency):
                        continue
                    if _code(error) == "EntityAlreadyExists":
                        raise ConcurrencyConflict(
                            "the environment or idempotency key already exists"
                        ) from error
                    raise
                return record.model_copy(update={"etag": result[0]["etag"]})
            raise ConcurrencyConflict("the owner's usage kept changing; try again")
        except (QuotaExceeded, ConcurrencyConflict, HttpResponseError) as error:
            if _nothing_committed(error):
                self._withdraw(announced)
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
        replace = {"mode": UpdateMode.REPLACE, **_if_match(previous.etag)}
        fixed: builtins.list[Operation] = [("update", rows.environment_row(partition, record), replace)]
        if moved:
            event = AuditEvent(
                environment_id=record.id,
                from_status=previous.status,
                to_status=record.status,
                actor=change.actor,
                reason=change.reason,
                at=change.at,
            )
            fixed.append(("create", rows.event_row_for(partition, event, owner, record.version)))
        counts: _UsageState | None = None
        if Usage().after(previous.status, record.status) != Usage():
            counts = self._current_usage(partition)
            if limits is not None:  # refuse before writing anything, index included
                admit(counts[1], previous.status, record.status, limits)
        announced = self._announce(record, previous)
        try:
            if counts is not None:
                result = self._save_with_usage(
                    partition, owner, fixed, previous.status, record.status, limits, counts
                )
            else:
                result = self._commit_record(fixed)
        except (QuotaExceeded, ConcurrencyConflict, HttpResponseError) as error:
            if _nothing_committed(error):
                self._withdraw(announced)
            raise
        if moved:
            self._retire(previous.status, record)
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
                self._envs.update_entity(patch, mode=UpdateMode.MERGE, **_if_match(_etag(row)))
                return
            except ResourceModifiedError:
                continue  # someone wrote meanwhile: re-read and compare again
            except ResourceNotFoundError:
                return

    def repair_index(self, entry: IndexEntry) -> None:
        """Bring one index row in line with its record: drop it when the record no longer has that
        status, or raise its idle_stop_at to the record's. A row announcing a newer version than
        the record is a write in flight and is left alone until `pending_grace` has passed."""
        row = self._point(self._index, entry.status.value, entry.environment_id)
        if row is None:
            return
        record = self.get(str(row["owner"]), entry.environment_id)
        in_flight = rows.index_version(row) > (record.version if record else 0) and not self._stale(row)
        if in_flight:
            return
        if record is None or record.status is not entry.status or not rows.indexed(record):
            self._delete_index_row(entry.status, entry.environment_id, _etag(row))
            return
        truth, indexed = record.idle_stop_at, row.get("idle_stop_at")
        if truth is not None and (indexed is None or truth > utc(indexed)):
            patch = {
                "PartitionKey": entry.status.value,
                "RowKey": entry.environment_id,
                "idle_stop_at": truth,
            }
            self._guarded(
                lambda: self._index.update_entity(patch, mode=UpdateMode.MERGE, **_if_match(_etag(row)))
            )

    # --- transactions ---------------------------------------------------------------------------

    def _save_with_usage(
        self,
        partition: str,
        owner: str,
        fixed: builtins.list[Operation],
        source: Status,
        target: Status,
        limits: Limits | None,
        counts: _UsageState,
    ) -> builtins.list[Mapping[str, Any]]:
        """Commit a status change that moves the owner's counters, retrying only usage races."""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                _backoff(attempt)
                counts = self._current_usage(partition)
            usage_row, usage = counts
            after = (
                admit(usage, source, target, limits) if limits is not None else usage.after(source, target)
            )
            operations = [*fixed, self._usage_operation(partition, owner, usage_row, after)]
            try:
                return self._commit(operations)
            except TableTransactionError as error:
                code = _code(error)
                if code in _RACE_CODES and _failed_operation(error, len(operations)) == len(operations) - 1:
                    continue  # only the usage row raced: re-read it and decide again
                if code in _RACE_CODES:  # the record's ETag (or an unknown operation): re-read
                    raise ConcurrencyConflict("the environment changed since it was read") from error
                raise
        raise ConcurrencyConflict("the owner's usage kept changing; try again")

    def _commit_record(self, operations: builtins.list[Operation]) -> builtins.list[Mapping[str, Any]]:
        try:
            return self._commit(operations)
        except TableTransactionError as error:
            if _code(error) in _RACE_CODES:
                raise ConcurrencyConflict("the environment changed since it was read") from error
            raise

    def _usage_lost(
        self,
        error: TableTransactionError,
        operations: builtins.list[Operation],
        partition: str,
        environment_id: str,
        idempotency: IdempotencyRecord | None,
    ) -> bool:
        """Whether a create batch failed only because the usage row (the last operation) raced."""
        if _code(error) not in _RACE_CODES:
            return False
        failed = _failed_operation(error, len(operations))
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
        return self._envs.submit_transaction(operations)

    def _current_usage(self, partition: str) -> _UsageState:
        row = self._point(self._envs, partition, rows.USAGE_ROW)
        if row is not None:
            return row, rows.usage_from(row)
        # No counters yet (a new owner, or a lost row): count the records so quota stays exact.
        found = self._query(
            self._envs,
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            {"pk": partition, "low": rows.ENV_PREFIX, "high": rows.after_prefix(rows.ENV_PREFIX)},
            select=["status"],
        )
        live = [status for status in (Status(row["status"]) for row in found) if status is not Status.DELETED]
        return None, Usage(environments=len(live), active=sum(status in ACTIVE for status in live))

    @staticmethod
    def _usage_operation(partition: str, owner: str, current: TableEntity | None, after: Usage) -> Operation:
        row = rows.usage_row_for(partition, owner, after)
        if current is None:
            return ("create", row)  # a concurrent first write loses with EntityAlreadyExists
        return ("update", row, {"mode": UpdateMode.REPLACE, **_if_match(_etag(current))})

    # --- status index ---------------------------------------------------------------------------

    def _announce(self, record: Environment, previous: Environment | None) -> _Announcement | None:
        """Write ahead the index row for the record's new status (a superset until the commit)."""
        if record.status is Status.DELETED and not record.snapshot:
            return None  # only retired records, restorable from a snapshot, stay indexed
        idle = record.idle_stop_at
        if previous is not None and previous.status is record.status:
            # Same partition: only a lower idle_stop_at (a shorter timeout) must reach the index now.
            before = previous.idle_stop_at
            if idle is None or before is None or idle >= before:
                return None
        new_row = rows.index_row_for(record, record.version, idle)
        for _ in range(MAX_ATTEMPTS):
            try:
                self.stats.add("writes")
                created = self._index.create_entity(new_row)
                return _Announcement(record.status, record.id, str(created["etag"]), created=True)
            except ResourceExistsError:
                pass
            existing = self._point(self._index, record.status.value, record.id)
            if existing is None:
                continue  # deleted meanwhile: create again
            merged = dict(new_row)
            merged["version"] = max(rows.index_version(existing), record.version)
            if existing.get("idle_stop_at") is not None and idle is not None:
                # Never raise the indexed idle time ahead of a commit: that could hide a candidate.
                merged["idle_stop_at"] = min(utc(existing["idle_stop_at"]), idle)
            try:
                self.stats.add("writes")
                written = self._index.update_entity(
                    merged, mode=UpdateMode.REPLACE, **_if_match(_etag(existing))
                )
                return _Announcement(record.status, record.id, str(written["etag"]), created=False)
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        raise ConcurrencyConflict("the status index row kept changing; try again")

    def _withdraw(self, announced: _Announcement | None) -> None:
        """After a failed commit, remove an index row this write created (unless since changed)."""
        if announced is not None and announced.created:
            self._delete_index_row(announced.status, announced.environment_id, announced.etag)

    def _retire(self, old_status: Status, record: Environment) -> None:
        """After a commit, remove the index row of the status the record left."""
        if old_status is Status.DELETED:
            return
        try:
            row = self._point(self._index, old_status.value, record.id)
        except AzureError:
            log.warning("could not read index row %s/%s; a sweep will repair it", old_status.value, record.id)
            return
        # A row announcing a newer version belongs to a later write that is moving back there.
        if row is not None and rows.index_version(row) <= record.version:
            self._delete_index_row(old_status, record.id, _etag(row))

    def _delete_index_row(self, status: Status, environment_id: str, etag: str) -> None:
        self._guarded(
            lambda: self._index.delete_entity(status.value, environment_id, **_if_match(etag)),
        )

    def _guarded(self, write: Callable[[], object]) -> None:
        """An index write whose failure only leaves an extra candidate (a superset): never raise."""
        try:
            self.stats.add("writes")
            write()
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # someone else changed or removed the row: theirs stands
        except AzureError as error:
            log.warning("status index write failed (%s); a sweep will repair it", type(error).__name__)

    def _stale(self, row: TableEntity) -> bool:
        written = row.metadata.get("timestamp")
        return written is None or utc(written) <= datetime.now(UTC) - self._pending_grace

    # --- requests -------------------------------------------------------------------------------

    def owner_of(self, environment_id: str) -> str | None:
        """Whose environment an id is (the reconciler starts from compute, which knows only ids)."""
        row = self._point(self._index, DIRECTORY, rows.check_environment_id(environment_id), ["owner"])
        return str(row["owner"]) if row is not None else None

    # --- orphaned compute (the OrphanLedger port) -------------------------------------------------

    def orphan_sightings(self, names: Collection[str], now: datetime) -> dict[str, datetime]:
        """When each of `names` was first seen orphaned (`now` for a new one); rows of compute no
        longer orphaned are removed. One query plus a write per change."""
        wanted = set(names)
        seen: dict[str, datetime] = {}
        for row in self._query(self._index, "PartitionKey eq @pk", {"pk": ORPHANS}):
            name = str(row["RowKey"])
            if name in wanted:
                seen[name] = utc(row["first_seen"])
            else:
                self.forget_orphan(name)
        for name in wanted - set(seen):
            self.stats.add("writes")
            try:
                self._index.create_entity({"PartitionKey": ORPHANS, "RowKey": name, "first_seen": now})
                seen[name] = now
            except ResourceExistsError:  # another pass recorded it first: its time stands
                recorded = self._point(self._index, ORPHANS, name)
                seen[name] = utc(recorded["first_seen"]) if recorded is not None else now
        return seen

    def forget_orphan(self, name: str) -> None:
        self.stats.add("writes")
        with contextlib.suppress(ResourceNotFoundError):
            self._index.delete_entity(ORPHANS, name)

    def _register(self, record: Environment) -> None:
        """Write ahead the id → owner directory row; kept for good (DELETED records included)."""
        self.stats.add("writes")
        self._index.upsert_entity(
            {"PartitionKey": DIRECTORY, "RowKey": record.id, "owner": record.owner}, mode=UpdateMode.REPLACE
        )

    def _point(
        self, table: TableClient, partition: str, row_key: str, select: builtins.list[str] | None = None
    ) -> TableEntity | None:
        self.stats.add("point_reads")
        try:
            return table.get_entity(partition, row_key, select=select)
        except ResourceNotFoundError:
            return None

    def _query(
        self,
        table: TableClient,
        query: str,
        parameters: dict[str, Any],
        *,
        page_size: int | None = None,
        select: builtins.list[str] | None = None,
    ) -> Iterator[TableEntity]:
        pages = table.query_entities(query, parameters=parameters, results_per_page=page_size, select=select)
        for page in pages.by_page():
            self.stats.add("queries")
            yield from page
