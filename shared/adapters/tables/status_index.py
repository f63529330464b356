"""The status index the sweeps read: `{prefix}EnvironmentIndex`, PartitionKey = status, RowKey = id,
plus the id -> owner directory.

It cannot join the owner's transaction, so it is kept a SUPERSET of the truth: the row for the
new status is written ahead of the commit, the old one is removed after it, and a RUNNING row's
idle_stop_at never claims later than the record's. Each row carries the record version it
announces, so a repair can tell a write still in flight from a stale row. A sweep's many moves
share those writes (`write_ahead`, then `settle`): the new rows go ahead together and the old
ones after the commits, a transaction per status and hundred rows, not two requests per record.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.adapters.tables import batch, rows, writes
from shared.adapters.tables.client import MAX_ATTEMPTS, Tables, first, if_match, transactions
from shared.adapters.tables.rows import utc
from shared.adapters.tables.wire import Entity
from shared.domain.environment import Environment, Status
from shared.domain.lifecycle import ENTERED_ONCE, TRANSITIONAL
from shared.errors import ConcurrencyConflict
from shared.services.ports import IndexEntry, Moving

log = logging.getLogger(__name__)

# Index-table partition mapping environment ids to owners (statuses never take this name).
DIRECTORY = "DIRECTORY"

RecordReader = Callable[[str, str], Environment | None]  # (owner, id) -> the record, or None
# Candidate rows remembered for `retire` (ETag and version, a few dozen bytes each): enough for a
# sweep's pass; the oldest are forgotten first, and a forgotten row is simply read again.
REMEMBERED_ROWS = 20_000

RowAsRead = tuple[Status, str, str]  # (status, environment id, ETag): deleted only if unchanged since


@dataclass(frozen=True, slots=True)
class Announcement:
    """An index row written ahead of a commit; withdrawn only if this write created it."""

    status: Status
    environment_id: str
    etag: str
    created: bool


class StatusIndex:
    def __init__(self, tables: Tables, pending_grace: timedelta, read: RecordReader) -> None:
        self._tables = tables
        self._read = read
        self._index = tables.index
        # How long an index row announcing a newer version than its record is taken as "a write in
        # flight" before a repair treats it as the leftover of a failed write.
        self._pending_grace = pending_grace
        # (status, id) -> (ETag, version) of rows `candidates` returned: the commit that follows a
        # sweep's decision retires that row without reading it again. Plain dict operations are
        # atomic under the GIL; the ETag makes a stale entry harmless (the delete is refused).
        self._seen: dict[tuple[str, str], tuple[str, int]] = {}
        # Between `write_ahead` and `settle`: rows written ahead for (status, id, version), and the
        # ids whose old rows wait to be retired together (with the records they were retired for).
        self._lock = threading.Lock()
        self._ahead: dict[tuple[Status, str, int], Announcement] = {}
        self._deferred: set[str] = set()
        self._retiring: list[tuple[Status, Environment]] = []

    # --- reads (the SweepIndex port) ----------------------------------------------------------------

    def candidates(
        self,
        status: Status,
        idle_before: datetime | None = None,
        started_before: datetime | None = None,
        stopped_before: datetime | None = None,
        restorable_before: datetime | None = None,
        stopped_after: datetime | None = None,
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
        if stopped_after is not None:
            if status is not Status.STOPPED:
                raise ValueError("stopped_after only applies to STOPPED")
            query += " and stopped_at ge @stopped_after"
            parameters["stopped_after"] = utc(stopped_after)
        return (self._remember(row) for row in self._tables.query(self._index, query, parameters))

    def _remember(self, row: Entity) -> IndexEntry:
        while len(self._seen) >= REMEMBERED_ROWS:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread's pop
                del self._seen[next(iter(self._seen))]
        self._seen[(str(row["PartitionKey"]), str(row["RowKey"]))] = (row.etag, rows.index_version(row))
        return rows.index_from(row)

    def owner_of(self, environment_id: str) -> str | None:
        """Whose environment an id is (the reconciler starts from compute, which knows only ids)."""
        row = self._tables.point(self._index, DIRECTORY, rows.check_environment_id(environment_id), ["owner"])
        return str(row["owner"]) if row is not None else None

    def repair_index(self, entry: IndexEntry) -> None:
        """Bring one index row in line with its record: drop it when the record no longer has that
        status, or raise its idle_stop_at to the record's. A row announcing a newer version than
        the record is a write in flight and is left alone until `pending_grace` has passed."""
        row = self._tables.point(self._index, entry.status.value, entry.environment_id)
        if row is None:
            return
        record = self._read(str(row["owner"]), entry.environment_id)
        in_flight = rows.index_version(row) > (record.version if record else 0) and not self._stale(row)
        if in_flight:
            return
        if record is None or record.status is not entry.status or not rows.indexed(record):
            self._delete_row(entry.status, entry.environment_id, row.etag)
            return
        truth, indexed = record.idle_stop_at, row.get("idle_stop_at")
        if truth is not None and (indexed is None or truth > utc(indexed)):
            patch = {
                "PartitionKey": entry.status.value,
                "RowKey": entry.environment_id,
                "idle_stop_at": truth,
            }
            self._guarded(
                lambda: writes.update(self._index, patch, mode=UpdateMode.MERGE, **if_match(row.etag))
            )

    # --- writes around a record's commit -------------------------------------------------------------

    def register(self, record: Environment) -> None:
        """Write ahead the id → owner directory row; kept for good (DELETED records included)."""
        self._tables.stats.add("writes")
        writes.upsert(
            self._index,
            {"PartitionKey": DIRECTORY, "RowKey": record.id, "owner": record.owner},
            mode=UpdateMode.REPLACE,
        )

    def announce(self, record: Environment, previous: Environment | None) -> Announcement | None:
        """Write ahead the index row for the record's new status (a superset until the commit)."""
        if record.status is Status.DELETED and not record.snapshot:
            return None  # only retired records, restorable from a snapshot, stay indexed
        if self._ahead and previous is not None and previous.status is not record.status:
            with self._lock:  # written ahead (`write_ahead`) for exactly this version
                ahead = self._ahead.pop((record.status, record.id, record.version), None)
            if ahead is not None:
                return ahead
        idle = record.idle_stop_at
        if previous is not None and previous.status is record.status:
            # Same partition: only a lower idle_stop_at (a shorter timeout) must reach the index now.
            before = previous.idle_stop_at
            if idle is None or before is None or idle >= before:
                return None
        new_row = rows.index_row_for(record, record.version, idle)
        for _ in range(MAX_ATTEMPTS):
            try:
                self._tables.stats.add("writes")
                created = writes.create(self._index, new_row)
                return Announcement(record.status, record.id, str(created["etag"]), created=True)
            except ResourceExistsError:
                pass
            existing = self._tables.point(self._index, record.status.value, record.id)
            if existing is None:
                continue  # deleted meanwhile: create again
            merged = dict(new_row)
            merged["version"] = max(rows.index_version(existing), record.version)
            if existing.get("idle_stop_at") is not None and idle is not None:
                # Never raise the indexed idle time ahead of a commit: that could hide a candidate.
                merged["idle_stop_at"] = min(utc(existing["idle_stop_at"]), idle)
            try:
                self._tables.stats.add("writes")
                written = writes.update(
                    self._index, merged, mode=UpdateMode.REPLACE, **if_match(existing.etag)
                )
                return Announcement(record.status, record.id, str(written["etag"]), created=False)
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        raise ConcurrencyConflict("the status index row kept changing; try again")

    def withdraw(self, announced: Announcement | None) -> None:
        """After a failed commit, remove an index row this write created (unless since changed)."""
        if announced is not None and announced.created:
            self._delete_row(announced.status, announced.environment_id, announced.etag)

    def retire(self, old_status: Status, record: Environment) -> None:
        """After a commit, remove the index row of the status the record left, unless it announces
        a newer version. A row a sweep's query just returned is judged as the query saw it and
        deleted by its ETag, without a read; one changed since is read again."""
        if old_status is Status.DELETED:
            return
        if self._deferred:
            with self._lock:
                if record.id in self._deferred:  # written ahead: retired with the others by `settle`
                    self._retiring.append((old_status, record))
                    return
        self._retire_one(old_status, record, self._seen.pop((old_status.value, record.id), None))

    def _retire_one(self, old_status: Status, record: Environment, seen: tuple[str, int] | None) -> None:
        if (
            seen is not None
            and seen[1] <= record.version
            and self._delete_row(old_status, record.id, seen[0])  # False: changed since
        ):
            return
        if old_status in ENTERED_ONCE:  # no later write can move back there: nothing newer to keep
            self._guarded(lambda: writes.delete(self._index, old_status.value, record.id))
            return
        try:
            row = self._tables.point(self._index, old_status.value, record.id)
        except AzureError:
            log.warning("could not read index row %s/%s; a sweep will repair it", old_status.value, record.id)
            return
        # A row announcing a newer version belongs to a later write that is moving back there.
        if row is not None and rows.index_version(row) <= record.version:
            self._delete_row(old_status, record.id, row.etag)

    # --- a sweep's moves, their index writes together -----------------------------------------------

    def write_ahead(self, moves: Sequence[tuple[Environment, Status]], at: datetime) -> Moving:
        """Before the commits of many records moving to transitional statuses (a sweep's stops
        and retirements): their new rows written together, a transaction per status and hundred
        rows (performing-entity-group-transactions: at most 100 operations, one partition); each
        commit then finds its row written, and the rows they leave wait for `settle`."""
        ahead = [
            env.model_copy(update={"status": to, "version": env.version + 1, "updated_at": at})
            for env, to in moves
            if to in TRANSITIONAL and to is not env.status  # rows without deadline columns
        ]
        written = self._announce_together([rows.index_row_for(env, env.version, None) for env in ahead])
        ids = frozenset(env.id for env, _ in moves)
        with self._lock:
            self._deferred |= ids
        return Moving(ids, tuple(written))

    def settle(self, moving: Moving) -> None:
        """After those commits: the rows they left retired together, and rows written ahead that
        no commit used (a user acted first) withdrawn. Whatever a transaction could not do is
        done one row at a time, as a lone commit would."""
        with self._lock:
            self._deferred -= moving.environment_ids
            retiring = [(status, env) for status, env in self._retiring if env.id in moving.environment_ids]
            self._retiring = [pair for pair in self._retiring if pair[1].id not in moving.environment_ids]
            unused = [self._ahead.pop(key) for key in moving.ahead if key in self._ahead]
        self._retire_together(retiring)
        for status, environment_id, row_etag in self._delete_together(
            [(ahead.status, ahead.environment_id, ahead.etag) for ahead in unused]
        ):
            self._delete_row(status, environment_id, row_etag)

    def _announce_together(self, new_rows: list[dict[str, Any]]) -> list[tuple[Status, str, int]]:
        """Create the rows, a transaction per status and hundred; remember each for its commit.
        A refused transaction (a row already there) leaves its rows to their commits."""
        written = []
        for chunk in transactions(new_rows, lambda row: row["PartitionKey"]):
            self._tables.stats.add("transactions")
            try:
                answers = batch.submit(self._index, [("create", row) for row in chunk])
            except AzureError:
                continue
            with self._lock:
                for row, answer in zip(chunk, answers, strict=True):
                    key = (Status(row["PartitionKey"]), str(row["RowKey"]), int(row["version"]))
                    self._ahead[key] = Announcement(key[0], key[1], str(answer["etag"]), created=True)
                    written.append(key)
        return written

    def _retire_together(self, retiring: list[tuple[Status, Environment]]) -> None:
        """The rows the records left: by the ETag their query returned, together; the rest (and a
        refused transaction's) one at a time."""
        known: dict[tuple[Status, str], tuple[Environment, tuple[str, int]]] = {}
        alone: list[tuple[Status, Environment, tuple[str, int] | None]] = []
        for status, record in retiring:
            seen = self._seen.pop((status.value, record.id), None)
            if seen is not None and seen[1] <= record.version:
                known[(status, record.id)] = (record, seen)
            else:
                alone.append((status, record, seen))
        doomed = [(status, environment_id, seen[0]) for (status, environment_id), (_, seen) in known.items()]
        for status, environment_id, _ in self._delete_together(doomed):
            alone.append((status, *known[(status, environment_id)]))
        for status, record, seen in alone:
            self._retire_one(status, record, seen)

    def _delete_together(self, doomed: list[RowAsRead]) -> list[RowAsRead]:
        """Delete rows unchanged since read, a transaction per status and hundred. Returns the
        rows of refused transactions (one had changed or gone) to be handled one at a time."""
        refused: list[RowAsRead] = []
        for chunk in transactions(doomed, first):
            self._tables.stats.add("transactions")
            try:
                batch.submit(
                    self._index,
                    [("delete", {"PartitionKey": s.value, "RowKey": i}, if_match(e)) for s, i, e in chunk],
                )
            except AzureError:
                refused.extend(chunk)
        return refused

    def _delete_row(self, status: Status, environment_id: str, row_etag: str) -> bool:
        """Delete the row if unchanged since it was read; False when it changed (theirs stands)."""
        return self._guarded(
            lambda: writes.delete(self._index, status.value, environment_id, **if_match(row_etag))
        )

    def _guarded(self, write: Callable[[], object]) -> bool:
        """An index write whose failure only leaves an extra candidate (a superset): never raise.
        False only when someone else changed the row since it was read (theirs stands)."""
        try:
            self._tables.stats.add("writes")
            write()
        except ResourceModifiedError:
            return False
        except ResourceNotFoundError:
            pass  # someone else removed the row: theirs stands
        except AzureError as error:
            log.warning("status index write failed (%s); a sweep will repair it", type(error).__name__)
        return True

    def _stale(self, row: Entity) -> bool:
        written = row.timestamp
        return written is None or utc(written) <= datetime.now(UTC) - self._pending_grace
