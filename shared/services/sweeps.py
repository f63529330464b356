"""The timer sweeps' decisions and passes: idle auto-stop, the session limit, and retention.

Each pass reads only candidates from the status index (one partition, filtered server-side),
confirms each with a point read, and acts through the same ETag-guarded commands users go
through, re-checking its reason on the fresh record so a user's activity that lands first wins;
candidates are handled a few at a time in parallel (each one's own steps stay in order).
Passes return the accepted commands; the caller starts their orchestrations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared import observability
from shared.domain import budget as budget_rules
from shared.domain import lifecycle
from shared.domain.decisions import purge_due, retire_reason, stop_reason
from shared.domain.environment import Actor, Environment, Policy, Status
from shared.domain.lifecycle import Command, Verdict
from shared.domain.operation import Kind
from shared.errors import DomainError
from shared.services.environments import CommandResult, EnvironmentService
from shared.services.ports import Change, Clock, EnvironmentRecords, IndexEntry, SweepIndex

# Candidates acted on at once: enough to hide the table's round trips, few enough that a pass
# never takes more than a small share of the storage account's 20,000 transactions a second
# (https://learn.microsoft.com/azure/storage/tables/scalability-targets).
SWEEP_WORKERS = 16
# Candidates confirmed before their commits begin: a window's index rows are written in a few
# transactions, and a candidate waits at most a window's reads between its read and its commit.
SWEEP_WINDOW = 500


@dataclass
class SweepReport:
    candidates: int = 0
    accepted: list[CommandResult] = field(default_factory=list)
    repaired: int = 0  # stale index rows brought in line
    skipped: int = 0  # changed under us (a user acted first)


class Sweeps:
    def __init__(
        self,
        records: EnvironmentRecords,
        service: EnvironmentService,
        clock: Clock,
        policy: Policy,
        *,
        index: SweepIndex,
        monthly_budget: float | None = None,
    ):
        self._monthly_budget = monthly_budget  # the deployment's (a token's claim, on the record, wins)
        self._records = records
        self._index = index
        self._service = service
        self._clock = clock
        self._policy = policy

    def idle(self) -> SweepReport:
        """Stop RUNNING environments idle past their timeout or past the session limit."""
        now = self._clock()
        candidates = self._index.candidates(
            Status.RUNNING,
            idle_before=now,
            started_before=now - timedelta(hours=self._policy.max_session_hours),
        )
        return self._pass(candidates, Command.STOP, Actor.IDLE_SWEEP, stop_reason, now)

    def retention(self) -> SweepReport:
        """Retire STOPPED environments untouched for the retention period (snapshot kept)."""
        now = self._clock()
        candidates = self._index.candidates(
            Status.STOPPED, stopped_before=now - timedelta(days=self._policy.retention_days)
        )
        return self._pass(candidates, Command.DELETE, Actor.RETENTION, retire_reason, now, kind=Kind.RETIRE)

    def budgets(self) -> SweepReport:
        """Owners with running environments, against their monthly budget: at 80% a note on each
        running environment (once a month), at 100% each is stopped ("monthly budget reached").
        One index read for who is running, then one partition read per such owner; without a
        deployment budget, only owners whose running environments carry their token's claim."""
        now = self._clock()
        report = SweepReport()
        running = self._index.candidates(Status.RUNNING)
        deployment_wide = self._monthly_budget is not None
        for owner in sorted({e.owner for e in running if deployment_wide or e.budgeted is not False}):
            records = self._records.list(owner)
            spent = budget_rules.spend(records, now, budget_rules.budget_of(records, self._monthly_budget))
            if spent.budget is None or spent.share < budget_rules.WARN_AT:
                continue
            for env in (env for env in records if env.status is Status.RUNNING):
                report.candidates += 1
                try:
                    if spent.share >= 1:
                        self._stop_for_budget(env, report)
                    else:
                        self._warn(env, spent, now)
                except DomainError:
                    report.skipped += 1  # changed under us (stopped, deleted): nothing to do
        return report

    def _stop_for_budget(self, env: Environment, report: SweepReport) -> None:
        result = self._service.command(
            env.owner,
            env.id,
            Command.STOP,
            Actor.BUDGET,
            reason="monthly budget reached",
            precondition=lambda fresh: fresh.status is Status.RUNNING,
        )
        if result.accepted:
            report.accepted.append(result)

    def _warn(self, env: Environment, spent: budget_rules.Spend, now: datetime) -> None:
        used = f"{spent.share:.0%} of the monthly budget used: USD {spent.spent:.2f} of {spent.budget:.2f}"
        self._service.audit(
            env.owner,
            env.id,
            Change(Actor.BUDGET, used, now),
            unless=lambda fresh: fresh.budget_warned == spent.month,
            budget_warned=spent.month,
        )

    def expired_snapshots(self) -> list[tuple[str, str]]:
        """Retired environments whose restore window has closed: (owner, id) to purge."""
        now = self._clock()
        expired = []
        for entry in self._index.candidates(Status.DELETED, restorable_before=now):
            env = self._records.get(entry.owner, entry.environment_id)
            if env is None or not purge_due(env, now):
                self._index.repair_index(entry)
                continue
            expired.append((env.owner, env.id))
        return expired

    def _pass(
        self,
        candidates: Iterable[IndexEntry],
        command: Command,
        actor: Actor,
        decide: Callable[[Environment, datetime, Policy], str | None],
        now: datetime,
        kind: Kind | None = None,
    ) -> SweepReport:
        """Each candidate confirmed by one point read and acted on by one ETag-guarded write (the
        command decides on the record just read), SWEEP_WORKERS at a time: a thousand stops are
        a thousand round trips each way, which one at a time would spend waiting. A window's
        index rows are written together around its commits (`SweepIndex.write_ahead`, `settle`)."""
        entries = list(candidates)
        report = SweepReport(candidates=len(entries))

        def confirm(entry: IndexEntry) -> tuple[IndexEntry, Environment, str] | None:
            env = self._records.get(entry.owner, entry.environment_id)
            reason = (
                decide(env, now, self._policy) if env is not None and env.status is entry.status else None
            )
            if env is None or reason is None:
                # A stale candidate: wrong status, or activity moved its deadline. Refresh the row.
                self._index.repair_index(entry)
                return None
            return entry, env, reason

        def act(due: tuple[IndexEntry, Environment, str]) -> CommandResult | str:
            entry, env, reason = due
            try:
                return self._service.command(
                    entry.owner,
                    entry.environment_id,
                    command,
                    actor,
                    reason=reason,
                    precondition=lambda fresh: decide(fresh, now, self._policy) is not None,
                    kind=kind,
                    current=env,
                )
            except DomainError:  # moved on meanwhile (409/404): nothing to do
                return "skipped"

        outcomes: list[CommandResult | str] = []
        settling: list[Future[None]] = []
        with (
            ThreadPoolExecutor(SWEEP_WORKERS, "sweep", initializer=observability.carried()) as pool,
            ThreadPoolExecutor(1, "sweep-settle", initializer=observability.carried()) as settler,
        ):
            try:
                for start in range(0, len(entries), SWEEP_WINDOW):
                    confirmed = list(pool.map(confirm, entries[start : start + SWEEP_WINDOW]))
                    due = [found for found in confirmed if found is not None]
                    moves = [(env, to) for _, env, _ in due if (to := _target(env, command)) is not None]
                    moving = self._index.write_ahead(moves, now)
                    try:
                        acted = iter(pool.map(act, due))
                        # In the index's order, as one at a time would have them.
                        outcomes += ["repaired" if found is None else next(acted) for found in confirmed]
                    finally:
                        # The window's old rows go while the next window is read and acted on.
                        settling.append(settler.submit(self._index.settle, moving))
            finally:
                for settled in settling:
                    settled.result()
        for outcome in outcomes:
            if outcome == "repaired":
                report.repaired += 1
            elif isinstance(outcome, CommandResult) and outcome.accepted:
                report.accepted.append(outcome)
            else:
                report.skipped += 1
        return report


def _target(env: Environment, command: Command) -> Status | None:
    """Where the command moves the record, if it moves it."""
    decision = lifecycle.decide(env.status, command)
    return decision.target if decision.verdict is Verdict.TRANSITION else None
