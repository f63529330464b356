"""Use cases on workspace snapshots: list, take, restore (in place or into a new environment),
the agent's reports, the stop hand-off's answer, and retention's restore window.

The snapshots themselves live in the workspace's restic repository; what the API lists is the
snapshot log the agent keeps up to date (shared/domain/snapshots.py). Every user action and every
outcome a user should know about is written to the environment's audit trail.
"""

from __future__ import annotations

import builtins
import secrets as pysecrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import chain

from shared import agent_tokens, observability
from shared.domain.environment import Actor, Environment, Status, new_id
from shared.domain.operation import Kind, operation_id
from shared.domain.snapshots import (
    PRUNE,
    PRUNE_REQUEST,
    SNAPSHOT_ID,
    Reason,
    Snapshot,
    SnapshotEvent,
    SnapshotLog,
    SnapshotReport,
    age_text,
    manual_outcome,
    nothing_new,
    prune_due,
)
from shared.errors import ConcurrencyConflict, Conflict, InvalidState, NotFound
from shared.secrets import PASSWORD_KEY, SNAPSHOT_PASSWORD_KEY, generate_password, seal, unseal
from shared.services.environments import (
    MAX_WRITE_ATTEMPTS,
    CommandResult,
    EnvironmentService,
)
from shared.services.ports import (
    Change,
    Clock,
    EnvironmentRecords,
    IndexEntry,
    SnapshotLogs,
    SweepIndex,
    WorkspaceAgent,
)
from shared.settings import Settings

# What `Environment.snapshot` holds for a retired environment whose repository never reported a
# snapshot: restic's own name for the newest one.
LATEST = "latest"
RESTORABLE = (Status.STOPPED, Status.ERROR)  # no workspace running that a restore would overwrite
PRUNE_WORKERS = 16  # the sweeps' bound (sweeps.SWEEP_WORKERS): a small share of the account's rate


class SnapshotService:
    def __init__(
        self,
        environments: EnvironmentService,
        records: EnvironmentRecords,
        logs: SnapshotLogs,
        agent: Callable[[], WorkspaceAgent],
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._environments = environments
        self._records = records
        self._logs = logs
        self._agent = agent  # built on first use: the HTTP path loads no storage SDK to list
        self._settings = settings
        self._clock = clock

    # --- the API ----------------------------------------------------------------------------------

    def list(self, owner: str, environment_id: str) -> builtins.list[Snapshot]:
        self._environments.get(owner, environment_id)
        return self._logs.snapshot_log(owner, environment_id).snapshots

    def take(self, owner: str, environment_id: str) -> str:
        """Ask the running workspace for a manual snapshot; it is listed once taken. Returns the
        request's id."""
        env = self._environments.get(owner, environment_id)
        if env.status is not Status.RUNNING:
            raise InvalidState(
                f"environment is {env.status.value}; start it to take a snapshot",
                {"status": env.status.value},
            )
        request_id = f"manual-{pysecrets.token_hex(6)}"
        self._agent().ask(environment_id, request_id, Reason.MANUAL)
        change = Change(Actor.USER, f"manual snapshot requested ({request_id})", self._clock())
        self._environments.audit(owner, environment_id, change)
        return request_id

    def restore_on_start(self, owner: str, environment_id: str, snapshot_id: str) -> Snapshot:
        """The next start of this stopped environment restores `snapshot_id` (not the latest)."""
        snap = self._snapshot(owner, environment_id, snapshot_id)
        change = Change(
            Actor.USER,
            f"the next start restores snapshot {snap.id} taken at {snap.taken_at:%Y-%m-%dT%H:%M:%SZ}",
            self._clock(),
        )
        self._environments.audit(
            owner,
            environment_id,
            change,
            precondition=lambda env: env.status in RESTORABLE,
            refusal="stop it to restore a snapshot",
            restore_snapshot=snap.id,
        )
        return snap

    def restore_into_new(self, owner: str, environment_id: str, snapshot_id: str) -> CommandResult:
        """A new environment like this one whose first start restores `snapshot_id`."""
        snap = self._snapshot(owner, environment_id, snapshot_id)
        source = self._environments.get(owner, environment_id)
        result = self.copy_of(source, f"restored from snapshot {snap.id} of {source.id}", snap.id)
        self._environments.audit(
            owner,
            environment_id,
            Change(Actor.USER, f"snapshot {snap.id} restored into {result.environment.id}", self._clock()),
        )
        return result

    def _snapshot(self, owner: str, environment_id: str, snapshot_id: str) -> Snapshot:
        self._environments.get(owner, environment_id)
        snap = (
            self._logs.snapshot_log(owner, environment_id).find(snapshot_id)
            if SNAPSHOT_ID.fullmatch(snapshot_id)
            else None
        )
        if snap is None:
            raise NotFound("snapshot not found")
        return snap

    # --- what the workspace says ------------------------------------------------------------------

    def report(self, env: Environment, report: SnapshotReport) -> int:
        """The report of `env`'s own agent (`EnvironmentService.agent_environment` found `env` by
        its token): the log becomes restic's list with the figures of the reported snapshot.
        Returns how many are listed."""
        now = self._clock()
        log = self._update_log(env, lambda log: log.merged(report, now))
        event = report.event
        if event is not None and event.reason is Reason.MANUAL:  # the user's request, answered
            outcome = manual_outcome(event, log.latest, now)
            self._environments.audit(env.owner, env.id, Change(Actor.USER, outcome, now))
        return len(log.snapshots)

    def record_answer(self, owner: str, environment_id: str, event: SnapshotEvent) -> SnapshotLog:
        """The stop hand-off's answer, in the log even if the agent's own report was lost."""
        env = self._records.get(owner, environment_id)
        if env is None:
            return SnapshotLog()
        return self._update_log(env, lambda log: log.with_event(event))

    def last_snapshot_age(self, owner: str, environment_id: str) -> str:
        latest = self._latest(owner, environment_id)
        return age_text(latest.taken_at if latest else None, self._clock())

    def nothing_new_since(self, owner: str, environment_id: str) -> str:
        """Since which snapshot the tree has not changed (or that none was needed yet)."""
        return nothing_new(self._latest(owner, environment_id))

    def _latest(self, owner: str, environment_id: str) -> Snapshot | None:
        return self._logs.snapshot_log(owner, environment_id).latest

    def _update_log(self, env: Environment, change: Callable[[SnapshotLog], SnapshotLog]) -> SnapshotLog:
        for _ in range(MAX_WRITE_ATTEMPTS):
            current = self._logs.snapshot_log(env.owner, env.id)
            updated = change(current)
            if updated == current:
                return current
            try:
                return self._logs.save_snapshot_log(env.owner, env.id, updated)
            except ConcurrencyConflict:
                continue  # another report landed first: merge into the fresh log
        raise Conflict("the snapshot log is changing too often; try again")

    # --- pruning ------------------------------------------------------------------------------------

    def prune_pass(self, index: SweepIndex) -> int:
        """Leave a prune request with every running workspace whose repository is due (one log
        read each), and with those stopped since the last two passes: a running one prunes within
        seconds, a stopped one when it next starts. Returns how many were asked. Run by the
        retention timer, once a day, PRUNE_WORKERS reads at a time (the sweeps' bound).

        A stopped workspace's repository does not change until it starts again, and a request
        left with it waits for that start: asking it again each day, for every workspace ever
        stopped (most of a fleet), would only repeat the request. Two passes, so one that failed
        leaves nobody out; one stopped before them was asked then if it was due, and otherwise
        is asked once it has run again (a prune only forgets old snapshots: a late one loses
        nothing)."""
        now = self._clock()
        every = timedelta(hours=self._settings.snapshot_prune_hours)
        since = now - 2 * every

        def ask_if_due(entry: IndexEntry) -> bool:
            if not prune_due(self._logs.snapshot_log(entry.owner, entry.environment_id), now, every):
                return False
            agent = self._agent()
            agent.withdraw(entry.environment_id, PRUNE_REQUEST)  # the last answer, if any
            agent.ask(entry.environment_id, PRUNE_REQUEST, PRUNE)
            return True

        live = chain(index.candidates(Status.RUNNING), index.candidates(Status.STOPPED, stopped_after=since))
        with ThreadPoolExecutor(PRUNE_WORKERS, "prune", initializer=observability.carried()) as pool:
            return sum(pool.map(ask_if_due, live))

    # --- retention ----------------------------------------------------------------------------------

    def retired(self, owner: str) -> builtins.list[Environment]:
        """The owner's retired environments that can still be restored (newest first)."""
        now = self._clock()
        found = [env for env in self._records.restorable(owner, now) if _restorable(env, now)]
        return sorted(found, key=lambda env: env.updated_at, reverse=True)

    def restore_retired(self, owner: str, environment_id: str) -> CommandResult:
        """A new environment like the retired one, from its snapshot; the retired record stays as
        it is (its audit trail intact). One point read: not the owner's every record."""
        retired = self._records.get(owner, environment_id)
        if retired is None or not _restorable(retired, self._clock()):
            raise NotFound("no restorable environment with this id")
        assert retired.snapshot is not None
        pick = retired.snapshot if SNAPSHOT_ID.fullmatch(retired.snapshot) else None
        return self.copy_of(retired, f"restored from {retired.id}", pick)

    def remember_snapshot(self, owner: str, environment_id: str, operation: str) -> str:
        """Retirement: the snapshot the environment can be restored from (the newest in its log)
        is recorded on the record, for the operation retiring it only. Returns it."""
        latest = self._logs.snapshot_log(owner, environment_id).latest
        snapshot = latest.id if latest is not None else LATEST

        env = self._environments.audit(
            owner,
            environment_id,
            Change(Actor.RETENTION, f"kept for restore: snapshot {snapshot}", self._clock()),
            unless=lambda env: env.operation != operation or env.snapshot is not None,
            snapshot=snapshot,
        )
        return env.snapshot or snapshot

    def forget_snapshot(self, owner: str, environment_id: str) -> None:
        """After the purge: the retired record stays for audit, no longer restorable."""

        def forget(env: Environment) -> Environment | None:
            if env.snapshot is None and env.restorable_until is None:
                return None
            return env.model_copy(update={"snapshot": None, "restorable_until": None})

        change = Change(Actor.RETENTION, "workspace purged after the restore window", self._clock())
        self._environments.mutate(owner, environment_id, forget, change, include_deleted=True)

    def copy_of(self, source: Environment, reason: str, snapshot: str | None) -> CommandResult:
        """A new CREATING environment like `source` whose workspace starts as a copy of source's
        snapshot repository (so the same repository password), its first start restoring
        `snapshot` (None: the latest). Quotas apply as for any create."""
        key = self._settings.secrets_key_bytes
        values = unseal(key, source.id, source.sealed_secrets)
        values[PASSWORD_KEY] = generate_password()
        values.setdefault(SNAPSHOT_PASSWORD_KEY, generate_password())
        now = self._clock()
        env_id = new_id()
        agent_token = agent_tokens.mint(source.owner, env_id)
        values[agent_tokens.AGENT_TOKEN_VARIABLE] = agent_token
        env = source.model_copy(
            update={
                "id": env_id,
                "status": Status.CREATING,
                "status_reason": f"restoring from {source.id}",
                "vs_code_url": None,
                "ssh_connection_string": None,
                "last_accessed_at": now,
                "created_at": now,
                "updated_at": now,
                "started_at": None,
                "stopped_at": None,
                "operation": operation_id(Kind.CREATE, env_id, 1),
                "redrives": 0,
                "keep": False,
                "snapshot": None,
                "restorable_until": None,
                "restored_from": source.id,
                "restore_snapshot": snapshot,
                "unclean_stop": None,
                "agent_token_hash": agent_tokens.digest(agent_token),
                "sealed_secrets": seal(key, env_id, values),
                "version": 0,
                "etag": None,
            }
        )
        created = self._records.create(env, Change(Actor.USER, reason, now), self._environments.limits)
        return CommandResult(created, accepted=True)


def _restorable(env: Environment, now: datetime) -> bool:
    """Retired (deleted by retention, with the snapshot to restore from) and within its window."""
    return bool(
        env.status is Status.DELETED and env.snapshot and env.restorable_until and env.restorable_until > now
    )
