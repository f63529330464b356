"""In-memory fake of the EnvironmentRecords port, for fast service tests.

It keeps the contract the Table Storage adapter keeps (tests/contract runs the same tests on
both): ETags that change on every write, lifecycle edges only, one audit event per status
change, quota checked atomically with the write, idempotency keys and ids unique, touch
monotonic. One lock stands in for the entity-group transaction.
"""

from __future__ import annotations

import builtins
import itertools
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from shared.domain.environment import AuditEvent, Environment, Status
from shared.domain.lifecycle import can_move
from shared.domain.quota import Limits, Usage, admit
from shared.domain.samples import Point, minute_of
from shared.domain.snapshots import Reason, SnapshotEvent, SnapshotLog
from shared.errors import ConcurrencyConflict
from shared.services.ports import Change, IdempotencyRecord


@dataclass
class InMemoryRecords:
    """EnvironmentRecords in a dict. `writes` counts committed writes (records and touches)."""

    writes: int = 0
    _records: dict[tuple[str, str], Environment] = field(default_factory=dict)
    _events: dict[tuple[str, str], builtins.list[AuditEvent]] = field(default_factory=dict)
    _keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    _usage: dict[str, Usage] = field(default_factory=dict)
    _etags: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, owner: str, environment_id: str) -> Environment | None:
        with self._lock:
            return self._records.get((owner, environment_id))

    async def get_async(self, owner: str, environment_id: str) -> Environment | None:
        return self.get(owner, environment_id)

    def list(self, owner: str, live: bool = False) -> builtins.list[Environment]:
        with self._lock:
            mine = [
                env
                for (who, _), env in self._records.items()
                if who == owner and not (live and env.status is Status.DELETED)
            ]
        return sorted(mine, key=lambda env: (env.created_at, env.id))

    async def list_async(self, owner: str, live: bool = False) -> builtins.list[Environment]:
        return self.list(owner, live)

    def restorable(self, owner: str, now: datetime) -> builtins.list[Environment]:
        return [
            env
            for env in self.list(owner)
            if env.status is Status.DELETED
            and env.restorable_until is not None
            and env.restorable_until > now
        ]

    def usage(self, owner: str) -> Usage:
        with self._lock:
            return self._usage.get(owner, Usage())

    def create(
        self,
        environment: Environment,
        change: Change,
        limits: Limits,
        idempotency: IdempotencyRecord | None = None,
    ) -> Environment:
        if not can_move(None, environment.status):
            raise ValueError(f"a new environment must be {Status.CREATING.value}")
        owner = environment.owner
        with self._lock:
            after = admit(self._usage.get(owner, Usage()), None, environment.status, limits)
            if (owner, environment.id) in self._records or (
                idempotency is not None and (owner, idempotency.key) in self._keys
            ):
                raise ConcurrencyConflict("the environment or idempotency key already exists")
            record = self._stamp(environment.model_copy(update={"version": 1}))
            self._events[(owner, record.id)] = [self._event(record, None, change)]
            if idempotency is not None:
                self._keys[(owner, idempotency.key)] = idempotency
            self._usage[owner] = after
            return record

    def save(
        self, previous: Environment, updated: Environment, change: Change, limits: Limits | None = None
    ) -> Environment:
        if not can_move(previous.status, updated.status):
            raise ValueError(f"{previous.status.value} -> {updated.status.value} is not a lifecycle edge")
        if (updated.id, updated.owner) != (previous.id, previous.owner):
            raise ValueError("save cannot change an environment's id or owner")
        if previous.etag is None:
            raise ValueError("previous has no ETag; save a record read from the store")
        key = (previous.owner, previous.id)
        with self._lock:
            current = self._records.get(key)
            if current is None or current.etag != previous.etag:
                raise ConcurrencyConflict("the environment changed since it was read")
            usage = self._usage.get(previous.owner, Usage())
            after = (
                admit(usage, previous.status, updated.status, limits)
                if limits is not None
                else usage.after(previous.status, updated.status)
            )
            record = self._stamp(
                updated.model_copy(update={"version": previous.version + 1, "updated_at": change.at})
            )
            if previous.status is not record.status or change.audited:
                self._events[key].insert(0, self._event(record, previous.status, change))
            self._usage[previous.owner] = after
            return record

    def touch(self, owner: str, environment_id: str, at: datetime) -> None:
        with self._lock:
            current = self._records.get((owner, environment_id))
            if current is None or current.last_accessed_at >= at:
                return
            self._stamp(current.model_copy(update={"last_accessed_at": at}))

    def events(
        self, owner: str, environment_id: str, limit: int = 100, before: int | None = None
    ) -> builtins.list[AuditEvent]:
        with self._lock:
            trail = self._events.get((owner, environment_id), [])
            older = [e for e in trail if before is None or (e.version or 0) < before]
            return older[: max(limit, 0)]

    def idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        with self._lock:
            return self._keys.get((owner, key))

    def _stamp(self, record: Environment) -> Environment:
        """Store a write under a fresh ETag (the caller holds the lock)."""
        stamped = record.model_copy(update={"etag": f'W/"{next(self._etags)}"'})
        self._records[(record.owner, record.id)] = stamped
        self.writes += 1
        return stamped

    @staticmethod
    def _event(record: Environment, source: Status | None, change: Change) -> AuditEvent:
        return AuditEvent(
            environment_id=record.id,
            from_status=source,
            to_status=record.status,
            actor=change.actor,
            reason=change.reason,
            at=change.at,
            version=record.version,
        )


@dataclass
class InMemorySnapshotLogs:
    """SnapshotLogs in a dict, with the adapter's ETag rule (tests/contract runs both)."""

    _logs: dict[tuple[str, str], SnapshotLog] = field(default_factory=dict)
    _etags: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot_log(self, owner: str, environment_id: str) -> SnapshotLog:
        with self._lock:
            return self._logs.get((owner, environment_id), SnapshotLog())

    def save_snapshot_log(self, owner: str, environment_id: str, log: SnapshotLog) -> SnapshotLog:
        with self._lock:
            current = self._logs.get((owner, environment_id))
            if (current.etag if current is not None else None) != log.etag:
                raise ConcurrencyConflict("the snapshot log changed since it was read")
            stored = log.model_copy(update={"etag": f'W/"{next(self._etags)}"'})
            self._logs[(owner, environment_id)] = stored
            return stored


@dataclass
class ScriptedAgent:
    """A WorkspaceAgent whose answers the test writes (`answers[request_id]`)."""

    asked: dict[tuple[str, str], Reason | Literal["prune"]] = field(default_factory=dict)
    answers: dict[str, SnapshotEvent] = field(default_factory=dict)
    withdrawn: builtins.list[str] = field(default_factory=list)

    def ask(self, environment_id: str, request_id: str, reason: Reason | Literal["prune"]) -> None:
        self.asked[(environment_id, request_id)] = reason

    def answer(self, environment_id: str, request_id: str) -> SnapshotEvent | None:
        return self.answers.get(request_id) if (environment_id, request_id) in self.asked else None

    def withdraw(self, environment_id: str, request_id: str) -> None:
        self.withdrawn.append(request_id)
        self.asked.pop((environment_id, request_id), None)


@dataclass
class InMemoryResourceSamples:
    """ResourceSamples in a dict, kept in hour blocks as the table keeps them."""

    points: dict[str, dict[datetime, Point]] = field(default_factory=dict)

    def add(self, environment_id: str, point: Point) -> None:
        at = minute_of(point.at)
        self.points.setdefault(environment_id, {})[at] = point.model_copy(update={"at": at})

    def series(self, environment_id: str, since: datetime) -> builtins.list[Point]:
        since = minute_of(since)
        return sorted(
            (p for at, p in self.points.get(environment_id, {}).items() if at >= since), key=lambda p: p.at
        )

    def expire(self, before: datetime) -> int:
        first_kept = before.replace(minute=0, second=0, microsecond=0)
        gone = set()
        for environment_id, series in self.points.items():
            for at in [at for at in series if at < first_kept]:
                gone.add((environment_id, at.replace(minute=0)))
                del series[at]
        return len(gone)

    def drop(self, environment_id: str) -> None:
        self.points.pop(environment_id, None)


class FixedClock:
    """The services' Clock, standing still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


_PHASE_TIMINGS = re.compile(r" \((?:[A-Za-z ]+ \d+\.\d s(?:, )?)+\)$")


def without_phase_timings(reason: str) -> str:
    """A settle's audit reason without the phase timings it ends with ("running (workspace 0.1 s, ...)")."""
    return _PHASE_TIMINGS.sub("", reason)
