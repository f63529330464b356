"""Drift reconciliation between the records and the compute backend.

- Orphan compute (no record, or a DELETED one) is removed once it has stayed orphaned for the
  grace period. First sightings are kept in Table Storage (the OrphanLedger port), so the grace
  period ends even when every pass runs on a fresh instance (Flex Consumption scales to zero).
- A RUNNING record whose compute is gone, stopped or failed is stopped through the normal stop
  orchestration (actor `reconciler`), which ends in STOPPED.
- A record stuck in a transitional status past `stuck_after` whose orchestration is no longer
  running is re-driven once (activities are idempotent), then failed to ERROR with a reason.
- It never touches a workspace. A second pass right after the first changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.domain import decisions
from shared.domain.decisions import ReconcilePolicy
from shared.domain.environment import Actor, Environment, Status
from shared.domain.lifecycle import TRANSITIONAL, Command
from shared.domain.operation import instance_id
from shared.domain.resources import ComputeState
from shared.errors import BackendError, ConcurrencyConflict, DomainError
from shared.services.environments import EnvironmentService
from shared.services.ports import (
    Change,
    Clock,
    ComputeBackend,
    ComputeStatus,
    EnvironmentRecords,
    IndexEntry,
    OrphanLedger,
    SweepIndex,
)

MAX_REDRIVES = 1
LIVE = frozenset(Status) - {Status.DELETED}  # statuses whose records own their compute
log = logging.getLogger(__name__)


def _unchanged_since(operation: str | None) -> Callable[[Environment], bool]:
    """Still RUNNING under the operation we looked at: nobody acted since."""
    return lambda fresh: fresh.status is Status.RUNNING and fresh.operation == operation


@dataclass
class ReconcileReport:
    launches: list[Environment] = field(default_factory=list)  # orchestrations the caller starts
    stopped: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    orphans_waiting: list[str] = field(default_factory=list)
    error_compute_stopped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.launches or self.failed or self.orphans_removed or self.error_compute_stopped)


class Reconciler:
    def __init__(
        self,
        records: EnvironmentRecords,
        service: EnvironmentService,
        compute: ComputeBackend,
        clock: Clock,
        *,
        index: SweepIndex,
        orphans: OrphanLedger,
        stuck_after: timedelta,
        orphan_grace: timedelta,
    ):
        self._records = records
        self._index = index
        self._orphans_seen = orphans
        self._service = service
        self._compute = compute
        self._clock = clock
        self._policy = ReconcilePolicy(stuck_after, orphan_grace, MAX_REDRIVES)

    def run(self, operation_alive: Callable[[str], bool]) -> ReconcileReport:
        """One pass. `operation_alive(instance_id)` says whether an orchestration still runs.
        It reads each live status's index partition once, and a record only where the index and
        the compute disagree: a healthy fleet costs a handful of queries, not reads per
        environment."""
        now = self._clock()
        report = ReconcileReport()
        live = {status: list(self._index.candidates(status)) for status in Status if status in LIVE}
        computes = {status.environment_id: status for status in self._compute.list() if status.environment_id}
        self._orphans(computes, {e.environment_id for entries in live.values() for e in entries}, now, report)
        self._running_without_compute(computes, live[Status.RUNNING], report)
        self._stuck(now, operation_alive, live, report)
        self._error_compute(computes, live[Status.ERROR], now, report)
        return report

    def _orphans(
        self, computes: dict[str, ComputeStatus], indexed: set[str], now: datetime, report: ReconcileReport
    ) -> None:
        orphaned = []
        for environment_id, status in computes.items():
            if environment_id in indexed:
                continue  # a live record has a row of its status (the index is a superset): not orphaned
            owner = self._index.owner_of(environment_id)
            if decisions.orphaned(self._records.get(owner, environment_id) if owner else None):
                orphaned.append(status.name)
        # Adopted or gone meanwhile: forgotten by the ledger, so a later orphaning starts afresh.
        first_seen = self._orphans_seen.orphan_sightings(orphaned, now)
        for name in orphaned:
            if not decisions.orphan_due(first_seen.get(name, now), now, self._policy):
                report.orphans_waiting.append(name)
                continue
            try:
                self._compute.delete(name)
            except BackendError as error:  # one failing delete must not end the pass: next pass
                log.warning("could not remove orphan compute %s (%s)", name, type(error).__name__)
                report.orphans_waiting.append(name)
                continue
            self._orphans_seen.forget_orphan(name)
            report.orphans_removed.append(name)

    def _running_without_compute(
        self, computes: dict[str, ComputeStatus], running: list[IndexEntry], report: ReconcileReport
    ) -> None:
        for entry in running:
            compute = computes.get(entry.environment_id)
            if compute is not None and compute.state is ComputeState.PENDING:
                # A listing may not carry live state (ARM's list has no instance view): ask.
                try:
                    compute = self._compute.status(compute.name)
                except BackendError as error:  # unknown for now: look again next pass
                    log.warning("could not read the state of %s (%s)", compute.name, type(error).__name__)
                    continue
            state = compute.state if compute else ComputeState.ABSENT
            reason = decisions.lost_compute_reason(state, compute.detail if compute else None)
            if reason is None:
                continue  # its compute runs: nothing to read
            env = self._records.get(entry.owner, entry.environment_id)  # confirm before acting
            if env is None or env.status is not Status.RUNNING:
                self._index.repair_index(entry)
                continue
            operation = env.operation
            try:
                result = self._service.command(
                    env.owner,
                    env.id,
                    Command.STOP,
                    Actor.RECONCILER,
                    reason=reason,
                    precondition=_unchanged_since(operation),
                )
            except DomainError:
                continue
            if result.accepted:
                report.launches.append(result.environment)
                report.stopped.append(env.id)

    def _stuck(
        self,
        now: datetime,
        operation_alive: Callable[[str], bool],
        live: dict[Status, list[IndexEntry]],
        report: ReconcileReport,
    ) -> None:
        for status in sorted(TRANSITIONAL):
            for entry in live[status]:
                if now - entry.updated_at < self._policy.stuck_after:
                    continue  # the row's time is the record's or older: the record is not stuck either
                env = self._records.get(entry.owner, entry.environment_id)
                if env is None or env.status is not status:
                    self._index.repair_index(entry)
                    continue
                if not decisions.stuck(env, now, self._policy):
                    continue
                assert env.operation is not None
                if operation_alive(instance_id(env.operation, env.redrives)):
                    continue
                self._unstick(env, report)

    def _error_compute(
        self,
        computes: dict[str, ComputeStatus],
        errors: list[IndexEntry],
        now: datetime,
        report: ReconcileReport,
    ) -> None:
        """Stop (never delete) compute still billing under an ERROR record, e.g. after a stop whose
        retries ran out. The record keeps its status and reason; a user's start brings it back."""
        for entry in errors:
            compute = computes.get(entry.environment_id)
            if compute is None or compute.state not in (ComputeState.RUNNING, ComputeState.PENDING):
                continue
            # Settled a while ago and still ERROR (re-read just before acting: a start wins).
            env = self._records.get(entry.owner, entry.environment_id)
            if not decisions.stop_error_compute(env, compute.state, now, self._policy):
                continue
            assert env is not None
            try:
                self._compute.stop(compute.name)
            except BackendError as error:
                log.warning(
                    "could not stop compute %s of an ERROR record (%s)", compute.name, type(error).__name__
                )
                continue
            report.error_compute_stopped.append(env.id)

    def _unstick(self, env: Environment, report: ReconcileReport) -> None:
        try:
            if decisions.recovery(env, self._policy) is decisions.Recovery.REDRIVE:
                updated = env.model_copy(update={"redrives": env.redrives + 1})
                saved = self._records.save(env, updated, self._change("re-driving an interrupted operation"))
                report.launches.append(saved)
                report.redriven.append(env.id)
                return
            reason = decisions.interrupted_reason(env)
            self._service.settle(env.owner, env.id, env.operation or "", False, reason, Actor.RECONCILER)
            report.failed.append(env.id)
        except ConcurrencyConflict:
            return  # it moved meanwhile: the next pass looks again

    def _change(self, reason: str) -> Change:
        return Change(Actor.RECONCILER, reason, self._clock())
