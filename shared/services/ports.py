"""Ports: the small interfaces between the core and the outside world (one adapter module each)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from shared.domain.environment import Actor, AuditEvent, Environment, Status
from shared.domain.logs import LogSource
from shared.domain.meter import MonthUsage
from shared.domain.progress import Phase
from shared.domain.quota import Limits
from shared.domain.resources import ComputeState
from shared.domain.samples import Point
from shared.domain.snapshots import Reason, SnapshotEvent, SnapshotLog

Clock = Callable[[], datetime]  # the time now, tz-aware UTC (a fixed one in tests)

# --- Table Storage -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """Who moved a record, why and when (becomes the audit event of a status change)."""

    actor: Actor
    reason: str
    at: datetime
    # Also an audit event when the status stays (a snapshot asked for, a restore chosen).
    audited: bool = False


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """Binds an owner's Idempotency-Key to the request it came with and the environment it made."""

    key: str
    request_hash: str
    environment_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A sweep candidate from the status index. A superset of the truth: confirm with `get`."""

    status: Status
    owner: str
    environment_id: str
    idle_stop_at: datetime | None
    updated_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    # RUNNING rows: whether the record carries its owner's budget claim (None: not known, a row
    # written before the index said so), so the budget pass lists only owners that may have one.
    budgeted: bool | None = None


class EnvironmentRecords(Protocol):
    """The environment records of every owner, their audit trail and idempotency keys."""

    def get(self, owner: str, environment_id: str) -> Environment | None:
        """Point read (DELETED records included); the result carries its ETag."""
        ...

    async def get_async(self, owner: str, environment_id: str) -> Environment | None:
        """`get` on the running event loop (an API handler's), without a thread."""
        ...

    def list(self, owner: str, live: bool = False) -> builtins.list[Environment]:
        """Every record of one owner (one partition), DELETED included unless `live`, oldest
        first. `live` filters in the query: deleted records are kept for good (usage, audit)."""
        ...

    async def list_async(self, owner: str, live: bool = False) -> builtins.list[Environment]:
        """`list` on the running event loop (an API handler's), without a thread."""
        ...

    def restorable(self, owner: str, now: datetime) -> builtins.list[Environment]:
        """The owner's DELETED records whose restore window is still open at `now`, filtered in
        the query (the other deleted records are kept for good and would only grow the answer)."""
        ...

    def create(
        self,
        environment: Environment,
        change: Change,
        limits: Limits,
        idempotency: IdempotencyRecord | None = None,
    ) -> Environment:
        """Insert a new CREATING record, its first audit event, the owner's usage and the
        idempotency record in one transaction. Raises QuotaExceeded when a limit would break
        (rechecked on every retry of a usage race) and ConcurrencyConflict when the
        idempotency key or the id already exists."""
        ...

    def save(
        self, previous: Environment, updated: Environment, change: Change, limits: Limits | None = None
    ) -> Environment:
        """Replace `previous` (matched by its ETag) with `updated`. A status change must be an
        edge of the lifecycle; it appends an audit event and adjusts usage (checked against
        `limits` when given) in the same transaction. Raises ConcurrencyConflict when the
        record changed since `previous` was read."""
        ...

    def touch(self, owner: str, environment_id: str, at: datetime) -> None:
        """Record activity: merge last_accessed_at without an ETag (monotonic, never moves back)."""
        ...

    def events(
        self, owner: str, environment_id: str, limit: int = 100, before: int | None = None
    ) -> builtins.list[AuditEvent]:
        """The audit trail of one environment, newest first, at most `limit` events; with
        `before`, only those older than the event of that version (the next page)."""
        ...

    def idempotency(self, owner: str, key: str) -> IdempotencyRecord | None: ...


@dataclass(frozen=True)
class Moving:
    """A pass's moves between `SweepIndex.write_ahead` and `settle`: the environments, and the index
    rows written ahead for them (status, id, the version their commit will write)."""

    environment_ids: frozenset[str]
    ahead: tuple[tuple[Status, str, int], ...]


class SweepIndex(Protocol):
    """What the timers read instead of every record: candidates by status, owners by id."""

    def candidates(
        self,
        status: Status,
        idle_before: datetime | None = None,
        started_before: datetime | None = None,
        stopped_before: datetime | None = None,
        restorable_before: datetime | None = None,
        stopped_after: datetime | None = None,
    ) -> Iterator[IndexEntry]:
        """Index entries of one status; with deadlines, only those past any of them (RUNNING:
        idle or started before; STOPPED: stopped before; DELETED: retired records whose restore
        window closed before); with `stopped_after` (STOPPED), only those stopped since. One
        partition, filtered server-side."""
        ...

    def owner_of(self, environment_id: str) -> str | None:
        """The owner of an environment id (DELETED ones included), or None if never created."""
        ...

    def repair_index(self, entry: IndexEntry) -> None:
        """Bring one index row in line with its record (sweeps call it for stale candidates)."""
        ...

    def write_ahead(self, moves: Sequence[tuple[Environment, Status]], at: datetime) -> Moving:
        """Before a pass's commits of these records to these statuses: their new index rows,
        written together rather than one per commit. `settle` must follow the commits."""
        ...

    def settle(self, moving: Moving) -> None:
        """After those commits: the index rows they left, and rows written ahead for commits that
        did not happen, removed together."""
        ...


class OrphanLedger(Protocol):
    """Durable first sightings of orphaned compute (the reconciler's grace period must survive a
    recycled instance)."""

    def orphan_sightings(self, names: Collection[str], now: datetime) -> dict[str, datetime]:
        """First-seen time of each name (`now` when new); names not given are forgotten."""
        ...

    def forget_orphan(self, name: str) -> None: ...


class ResourceSamples(Protocol):
    """Each environment's resource samples, one per minute, for samples.WINDOW."""

    def add(self, environment_id: str, point: Point) -> None:
        """Keep `point` (one write, no read; a point in the same minute replaces it)."""
        ...

    def series(self, environment_id: str, since: datetime) -> builtins.list[Point]:
        """The points from `since` on, oldest first."""
        ...

    def expire(self, before: datetime) -> int:
        """Delete every environment's points older than `before` (a whole stored block at a
        time: what is kept may reach a little further back). Returns the blocks deleted."""
        ...

    def drop(self, environment_id: str) -> None:
        """Delete all of one environment's points."""
        ...


class Erasure(Protocol):
    """What an owner's own account deletion removes, and the anonymous totals it leaves."""

    def keep_anonymous_usage(self, erasure_id: str, month: str, usage: MonthUsage) -> None:
        """Keep one month's totals under `erasure_id` (random: no owner, no environment);
        writing the same id and month again replaces them."""
        ...

    def anonymous_usage(self, month: str) -> MonthUsage:
        """The month's totals of every erased owner, summed (what billing may still need)."""
        ...

    def erase(self, owner: str, environment_ids: Collection[str]) -> None:
        """Delete the owner's partition (records, audit trails, idempotency keys, quota
        counters, snapshot logs) and the ids' index rows, directory rows and resource samples.
        Idempotent."""
        ...


# --- Compute and workspace backends ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workspace:
    """A persistent workspace: an Azure Files share or a local directory."""

    name: str
    location: str  # share name or directory path
    quota_gb: int


@dataclass(frozen=True, slots=True)
class ComputeSpec:
    name: str
    environment_id: str
    owner: str
    image: str
    cpu_cores: float
    memory_gb: float
    ports: tuple[int, ...]
    environment_variables: dict[str, str]
    workspace: Workspace
    # Secure values (IDE password, user secrets): handed to the backend, never logged or stored.
    secure_environment: dict[str, str] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ComputeStatus:
    name: str
    state: ComputeState
    vs_code_url: str | None = None
    ssh_connection_string: str | None = None
    detail: str | None = None
    environment_id: str | None = None
    phase: Phase | None = None  # how far a create or start has got, as the backend sees it


class ComputeBackend(Protocol):
    def create(self, spec: ComputeSpec) -> ComputeStatus:
        """Create the compute if absent (an existing one is left as it is); does not wait."""
        ...

    def status(self, name: str) -> ComputeStatus: ...

    def start(self, spec: ComputeSpec) -> ComputeStatus: ...

    def stop(self, name: str) -> ComputeStatus: ...

    def delete(self, name: str) -> None:
        """Remove the compute; already gone is done."""
        ...

    def list(self) -> builtins.list[ComputeStatus]:
        """Every compute resource this backend manages for Dev8 (for reconciliation)."""
        ...

    def logs(self, name: str, source: LogSource, tail: int) -> str:
        """At least the last `tail` lines one container wrote ("" when there is none, or no such
        compute); raw: the caller cuts, bounds and scrubs them (shared/domain/logs.py)."""
        ...


class WorkspaceStorage(Protocol):
    def ensure(self, name: str, quota_gb: int) -> Workspace:
        """Create the workspace if absent; an existing one (and its files) is kept, its quota
        grown to `quota_gb` if smaller (never shrunk)."""
        ...

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None:
        """Remove the workspace and its snapshots; already gone is done."""
        ...

    def snapshot(self, name: str) -> str:
        """Take a point-in-time snapshot of the workspace; returns the snapshot's id."""
        ...

    def restore(self, name: str, snapshot: str, target: str, quota_gb: int) -> Workspace:
        """Make workspace `target` hold the files of `name`'s snapshot (if absent; idempotent).
        Only for environments retired before snapshots moved into the workspace's repository."""
        ...

    def copy(self, name: str, folder: str, target: str, quota_gb: int) -> Workspace:
        """Make workspace `target` (created if absent) hold a copy of `folder` of workspace `name`
        (files already in `target` are overwritten, none deleted; idempotent)."""
        ...

    # Small files the workspace's agent reads and writes (its mailbox), by path in the workspace.
    def write_file(self, name: str, path: str, data: bytes) -> None: ...

    def read_file(self, name: str, path: str) -> bytes | None:
        """The file's bytes, or None when it (or the workspace) does not exist."""
        ...

    def delete_file(self, name: str, path: str) -> None:
        """Already gone is done."""
        ...


class WorkspaceAgent(Protocol):
    """The agent inside a workspace, asked to take a snapshot now (a stop, a user) or to prune
    its repository (a request left for a stopped workspace waits for its next start)."""

    def ask(self, environment_id: str, request_id: str, reason: Reason | Literal["prune"]) -> None:
        """Leave the request: a snapshot for `reason`, or a prune (idempotent: asking again with
        the same id is one request)."""
        ...

    def answer(self, environment_id: str, request_id: str) -> SnapshotEvent | None:
        """What the agent did for the request, or None while it has not answered."""
        ...

    def withdraw(self, environment_id: str, request_id: str) -> None:
        """Remove the request and its answer (done with, or given up on)."""
        ...


class SnapshotLogs(Protocol):
    """Each environment's snapshot log (one row per environment)."""

    def snapshot_log(self, owner: str, environment_id: str) -> SnapshotLog:
        """The log as stored (empty, without an ETag, when there is none yet)."""
        ...

    def save_snapshot_log(self, owner: str, environment_id: str, log: SnapshotLog) -> SnapshotLog:
        """Write the log if it is unchanged since `log` was read (by its ETag); raises
        ConcurrencyConflict otherwise."""
        ...
