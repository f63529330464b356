"""Workspace snapshots: what the workspace's snapshot agent reports, and the log the API lists.

The agent (docker/base/dev8-snapshot-agent) keeps the working tree in a restic repository on the
environment's share. After each snapshot, restore or prune it reports restic's own list of
snapshots with the event that caused the report; the log merges the two, so a lost report only
loses the figures (files, bytes added) of the snapshots it announced, never the snapshots.
Plain data: no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

SNAPSHOT_ID = re.compile(r"^[0-9a-f]{8}$")  # restic's short id: the first 8 hex digits of the id
MAX_LISTED = 120  # far above what the keep policy leaves (last + hourly + daily); fits a 64 KiB body
REQUEST_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class Reason(StrEnum):
    INTERVAL = "interval"
    STOP = "stop"
    MANUAL = "manual"
    RETENTION = "retention"


PRUNE: Final = "prune"  # what else the agent's mailbox takes: forget and prune by the keep policy
PRUNE_REQUEST: Final = "prune"  # one standing prune request per workspace


def prune_due(log: SnapshotLog, now: datetime, every: timedelta) -> bool:
    """Whether a repository should be pruned: it has snapshots, and was not pruned recently."""
    return bool(log.snapshots) and (log.pruned_at is None or now - log.pruned_at >= every)


ShortId = Annotated[str, StringConstraints(pattern=SNAPSHOT_ID.pattern)]


class Snapshot(BaseModel):
    """One snapshot as the API shows it; files and bytes_added are None when never reported."""

    model_config = ConfigDict(frozen=True)

    id: ShortId
    taken_at: datetime
    reason: Reason
    files: int | None = None
    bytes_added: int | None = None

    @field_validator("taken_at")
    @classmethod
    def _utc(cls, moment: datetime) -> datetime:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# Events that say what came of a request without changing the repository.
OUTCOME_ONLY = frozenset({"unchanged", "failed"})


class SnapshotEvent(BaseModel):
    """One line the agent prints for what it just did (its `--json` output, trimmed)."""

    model_config = ConfigDict(extra="ignore")

    event: Literal["snapshot", "unchanged", "restored", "empty", "pruned", "failed"]
    id: ShortId | None = None
    taken_at: datetime | None = None
    reason: Reason | None = None
    files: int | None = Field(default=None, ge=0)
    bytes_added: int | None = Field(default=None, ge=0)
    request: str | None = Field(
        default=None,
        description="The manual request this answers (the id its POST gave); anything else is ignored.",
    )

    @field_validator("request", mode="before")
    @classmethod
    def _request_id(cls, value: object) -> str | None:
        # Only a name the API could have given; anything else is dropped, not the whole report
        # (which carries the snapshot list).
        return value if isinstance(value, str) and REQUEST_ID.fullmatch(value) else None


class ResticSnapshot(BaseModel):
    """The fields of one entry of `restic snapshots --json` that the log keeps."""

    model_config = ConfigDict(extra="ignore")

    short_id: ShortId
    time: datetime
    tags: list[str] | None = Field(default=None, max_length=16)  # restic leaves out an empty list

    @property
    def reason(self) -> Reason:
        for tag in self.tags or ():
            name, _, value = tag.partition(":")
            if name == "reason" and value in Reason.__members__.values():
                return Reason(value)
        return Reason.INTERVAL  # untagged: not made by the agent's on-demand paths


class SnapshotReport(BaseModel):
    """What the agent POSTs: the event it reports and restic's list as it stands after it."""

    model_config = ConfigDict(extra="forbid")

    event: SnapshotEvent | None = None
    snapshots: list[ResticSnapshot] = Field(max_length=MAX_LISTED)


class SnapshotLog(BaseModel):
    """An environment's snapshots, newest first, and when the repository was last pruned."""

    snapshots: list[Snapshot] = Field(default_factory=list)
    pruned_at: datetime | None = None
    etag: str | None = Field(default=None, repr=False)

    @property
    def latest(self) -> Snapshot | None:
        return self.snapshots[0] if self.snapshots else None

    def find(self, snapshot_id: str) -> Snapshot | None:
        return next((snap for snap in self.snapshots if snap.id == snapshot_id), None)

    def merged(self, report: SnapshotReport, now: datetime) -> SnapshotLog:
        """The log after `report`: restic's list is the truth about which snapshots exist; the
        figures come from the event that announced each one (or stay as the log had them). A
        request that saved nothing (unchanged, failed) reports its outcome only: the agent may
        have had no list to send, so the log stays as it is."""
        event = report.event
        if event is not None and event.event in OUTCOME_ONLY:
            return self
        known = {snap.id: snap for snap in self.snapshots}
        listed = []
        for entry in report.snapshots[:MAX_LISTED]:
            earlier = known.get(entry.short_id)
            snap = Snapshot(
                id=entry.short_id,
                taken_at=entry.time,  # restic's own, finer than what an event carries
                reason=entry.reason,
                files=earlier.files if earlier else None,
                bytes_added=earlier.bytes_added if earlier else None,
            )
            if event is not None and event.event == "snapshot" and event.id == entry.short_id:
                snap = snap.model_copy(update={"files": event.files, "bytes_added": event.bytes_added})
            listed.append(snap)
        listed.sort(key=lambda snap: (snap.taken_at, snap.id), reverse=True)
        pruned = now if event is not None and event.event == "pruned" else self.pruned_at
        return SnapshotLog(snapshots=listed, pruned_at=pruned, etag=self.etag)

    def with_event(self, event: SnapshotEvent) -> SnapshotLog:
        """The log with one announced snapshot added (the stop hand-off's answer, when the agent's
        own report has not arrived yet)."""
        if event.event != "snapshot" or event.id is None or event.taken_at is None or self.find(event.id):
            return self
        snap = Snapshot(
            id=event.id,
            taken_at=event.taken_at,
            reason=event.reason or Reason.INTERVAL,
            files=event.files,
            bytes_added=event.bytes_added,
        )
        return self.model_copy(update={"snapshots": [snap, *self.snapshots]})


def manual_outcome(event: SnapshotEvent, latest: Snapshot | None, now: datetime) -> str:
    """What came of a user's manual snapshot, for the audit trail (`latest`: the newest listed),
    naming the request as "manual snapshot requested (ID)" did, when the agent named it."""
    head = f"manual snapshot ({event.request})" if event.request else "manual snapshot"
    if event.event == "snapshot":
        return f"{head}: {event.id} taken" if event.request else f"{head} {event.id} taken"
    if event.event == "unchanged":
        return f"{head}: {nothing_new(latest)}"
    taken_at = latest.taken_at if latest else None
    return f"{head} failed (the workspace's log says why); {age_text(taken_at, now)}"


def nothing_new(latest: Snapshot | None) -> str:
    """Why a snapshot asked for was not taken when the tree had not changed: since which one."""
    if latest is None:
        return "nothing to save yet (the working tree is as the workspace started)"
    return f"nothing changed since snapshot {latest.id} ({_stamp(latest.taken_at)})"


def age_text(taken_at: datetime | None, now: datetime) -> str:
    """How old the last snapshot is, for the audit trail."""
    if taken_at is None:
        return "no snapshot was ever taken"
    seconds = max(0, int((now - taken_at) / timedelta(seconds=1)))
    if seconds < 120:
        amount = f"{seconds} s"
    elif seconds < 7200:
        amount = f"{seconds // 60} min"
    else:
        amount = f"{seconds // 3600} h"
    return f"the last snapshot ({_stamp(taken_at)}) is {amount} old"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
