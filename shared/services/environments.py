"""Use cases on environments: what the HTTP API and the activities ask of the core.

Plain Python over the ports: the store, a clock and the settings. Every read-modify-write is
guarded by the record's ETag and retried from a fresh read when it loses a race, so a stale
write is never applied.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared import agent_tokens
from shared.domain import budget as budget_rules
from shared.domain import lifecycle, metering, progress
from shared.domain.environment import ENVIRONMENT_ID, Actor, AuditEvent, Environment, Status
from shared.domain.lifecycle import Command, Verdict
from shared.domain.meter import MonthUsage
from shared.domain.operation import Kind, operation_id
from shared.domain.placement import Placement, ResourceBounds
from shared.domain.quota import Limits
from shared.domain.requests import CreateEnvironmentRequest, UpdateEnvironmentRequest
from shared.errors import (
    BudgetExceeded,
    ConcurrencyConflict,
    Conflict,
    InvalidState,
    NotFound,
    QuotaExceeded,
    Unauthorized,
)
from shared.secrets import PASSWORD_KEY, unseal
from shared.services.planning import planned
from shared.services.ports import Change, Clock, EnvironmentRecords, IdempotencyRecord
from shared.services.written import WrittenRecords
from shared.settings import Settings

MAX_WRITE_ATTEMPTS = 8
ACTIVITY_WRITE_INTERVAL = timedelta(minutes=1)
LAUNCH_FAILED_REASON = "could not start the operation; try again"


@dataclass(frozen=True, slots=True)
class Connection:
    vs_code_url: str | None
    password: str
    ssh_connection_string: str | None


@dataclass(frozen=True, slots=True)
class CommandResult:
    environment: Environment
    accepted: bool  # False: already there, nothing to run


def _found(env: Environment | None, include_deleted: bool = False) -> Environment:
    if env is None or (env.status is Status.DELETED and not include_deleted):
        raise NotFound("environment not found")
    return env


class EnvironmentService:
    def __init__(self, records: EnvironmentRecords, settings: Settings, clock: Clock, placement: Placement):
        self._records = records
        self._settings = settings
        self._clock = clock
        self._placement = placement
        self._limits = Limits(settings.max_environments_per_user, settings.max_running_per_user)
        self._bounds = ResourceBounds(settings.max_cpu_cores, settings.max_memory_gb, settings.max_storage_gb)
        self._written = WrittenRecords()  # for an operation's next step (services/written.py)

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def placement(self) -> Placement:
        return self._placement

    @property
    def bounds(self) -> ResourceBounds:
        return self._bounds

    # --- reads ------------------------------------------------------------------------------------

    def get(self, owner: str, environment_id: str) -> Environment:
        """The owner's live environment; anything else (unknown, deleted, another owner's) is 404."""
        valid = ENVIRONMENT_ID.fullmatch(environment_id)  # a malformed id is never looked up
        return _found(self._records.get(owner, environment_id) if valid else None)

    async def get_async(self, owner: str, environment_id: str) -> Environment:
        """`get` on the running event loop (the API's GET of one environment)."""
        valid = ENVIRONMENT_ID.fullmatch(environment_id)
        return _found(await self._records.get_async(owner, environment_id) if valid else None)

    def list(self, owner: str, status: Status | None = None) -> builtins.list[Environment]:
        return [env for env in self._records.list(owner, live=True) if status in (None, env.status)]

    async def list_async(self, owner: str, status: Status | None = None) -> builtins.list[Environment]:
        envs = await self._records.list_async(owner, live=True)  # `list` on the running event loop
        return [env for env in envs if status in (None, env.status)]

    def usage(self, owner: str, month: str) -> builtins.list[tuple[Environment, MonthUsage]]:
        """What each of the owner's environments (deleted, retired too) used in `month`, to now."""
        now = self._clock()
        used = [(env, metering.to_date(env, now).get(month)) for env in self._records.list(owner)]
        return [(env, month_usage) for env, month_usage in used if month_usage is not None]

    def events(
        self, owner: str, environment_id: str, limit: int = 100, before: int | None = None
    ) -> builtins.list[AuditEvent]:
        self.get(owner, environment_id)
        return self._records.events(owner, environment_id, limit, before)

    def connection(self, owner: str, environment_id: str) -> Connection:
        env = self.get(owner, environment_id)
        if env.status is not Status.RUNNING:
            raise InvalidState(f"environment is {env.status.value}; start it to connect")
        values = unseal(self._settings.secrets_key_bytes, env.id, env.sealed_secrets)
        return Connection(env.vs_code_url, values[PASSWORD_KEY], env.ssh_connection_string)

    def secure_environment(self, env: Environment) -> dict[str, str]:
        """The values handed to the compute backend as secure environment variables."""
        return unseal(self._settings.secrets_key_bytes, env.id, env.sealed_secrets)

    # --- create -------------------------------------------------------------------------------------

    def create(
        self,
        owner: str,
        request: CreateEnvironmentRequest,
        idempotency_key: str | None = None,
        budget: float | None = None,
    ) -> CommandResult:
        """Create a CREATING record. With an idempotency key, a repeat returns the first result
        (accepted=False: its orchestration is already running) and a different body is 409.
        `budget` is the caller's own (their token's claim), else the deployment's applies."""
        request_hash = self._request_hash(request) if idempotency_key else ""
        if idempotency_key:
            replay = self._replay(owner, idempotency_key, request_hash)
            if replay is not None:
                return CommandResult(replay, accepted=False)
        now = self._clock()
        env = planned(owner, request, self._settings, self._placement, self._bounds, now)
        env = env.model_copy(update={"monthly_budget": budget})
        record = IdempotencyRecord(idempotency_key, request_hash, env.id, now) if idempotency_key else None
        change = Change(Actor.USER, "created", now)
        try:
            self.check_budget(owner, env, budget)
            created = self._records.create(env, change, self._limits, record)
        except (ConcurrencyConflict, QuotaExceeded, BudgetExceeded):
            if idempotency_key is None:
                raise
            # Another request with the same key won the race, or committed since the read above
            # and now counts against the quota or the budget: answer with its environment.
            replay = self._replay(owner, idempotency_key, request_hash)
            if replay is None:
                raise
            return CommandResult(replay, accepted=False)
        self._written.remember(created)
        return CommandResult(created, accepted=True)

    def check_budget(self, owner: str, env: Environment, budget: float | None) -> None:
        """BudgetExceeded when this month's spend plus an hour of `env` would pass the budget."""
        limit = budget if budget is not None else self._settings.monthly_budget_per_user
        if limit is not None:
            budget_rules.spend(self._records.list(owner), self._clock(), limit).admit(env)

    def _replay(self, owner: str, key: str, request_hash: str) -> Environment | None:
        record = self._records.idempotency(owner, key)
        if record is None:
            return None
        if not hmac.compare_digest(record.request_hash, request_hash):
            raise Conflict("this Idempotency-Key was used with a different request body")
        env = self._records.get(owner, record.environment_id)
        if env is None or env.status is Status.DELETED:  # a DELETED record is kept, never shown
            raise Conflict("this Idempotency-Key belongs to an environment that no longer exists")
        return env

    def _request_hash(self, request: CreateEnvironmentRequest) -> str:
        # Keyed, so the hash of a low-entropy secret in the body cannot be brute-forced offline.
        canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hmac.new(self._settings.secrets_key_bytes, canonical.encode(), hashlib.sha256).hexdigest()

    # --- changes ------------------------------------------------------------------------------------

    def update(self, owner: str, environment_id: str, request: UpdateEnvironmentRequest) -> Environment:
        """The changes that are not a resize (services/resizing.py takes those)."""
        changes = request.settings()

        def rename(env: Environment) -> Environment | None:
            if all(getattr(env, field) == value for field, value in changes.items()):
                return None
            return env.model_copy(update=changes)

        return self.mutate(owner, environment_id, rename, Change(Actor.USER, "updated", self._clock()))

    def command(
        self,
        owner: str,
        environment_id: str,
        command: Command,
        actor: Actor = Actor.USER,
        *,
        reason: str | None = None,
        precondition: Callable[[Environment], bool] | None = None,
        kind: Kind | None = None,
        budget: float | None = None,
        current: Environment | None = None,  # the record just read: spares a read (ETag-guarded)
    ) -> CommandResult:
        """Apply a lifecycle command. Accepted commands move to a transitional status and name the
        orchestration that must run (`environment.operation`); the caller starts it. A user's
        start is refused past the month's budget (`budget`: their token's, else the deployment's).

        Sweeps pass a `precondition`, checked on the fresh record of every attempt, so a user's
        activity that lands first wins; `kind` names a variant of the command's orchestration
        (retention's "retire" is a delete that keeps a snapshot)."""
        accepted = False
        why = reason or f"{command.value} requested by {actor.value}"
        user_start = command is Command.START and actor is Actor.USER
        if user_start and (budget is not None or self._settings.monthly_budget_per_user is not None):
            current = self.get(owner, environment_id)  # only when a budget applies: one read more
            if lifecycle.decide(current.status, command).verdict is Verdict.TRANSITION:
                self.check_budget(owner, current, budget)

        def apply(env: Environment) -> Environment | None:
            nonlocal accepted
            accepted = False
            if precondition is not None and not precondition(env):
                return None
            decision = lifecycle.decide(env.status, command)
            if decision.verdict is Verdict.REFUSED:
                raise InvalidState(decision.reason, {"status": env.status.value})
            if decision.verdict is Verdict.NOOP:
                return None
            assert decision.target is not None
            accepted = True
            resized = env.pending_size.model_dump() if command is Command.START and env.pending_size else {}
            return env.model_copy(
                update={
                    **resized,  # a resize asked while it ran takes effect as it starts again
                    "pending_size": None if resized else env.pending_size,
                    "setup_problem": None if command is Command.START else env.setup_problem,  # set up anew
                    "status": decision.target,
                    "status_reason": why,
                    "operation": operation_id(kind or Kind(command.value), env.id, env.version + 1),
                    "redrives": 0,
                    # A start's phases from the first; other commands keep the last start's.
                    "progress": [] if command is Command.START else env.progress,
                    "monthly_budget": budget if user_start else env.monthly_budget,
                }
            )

        change = Change(actor, why, self._clock())
        limits = self._limits if command is Command.START else None
        env = self.mutate(owner, environment_id, apply, change, limits, current=current)
        return CommandResult(env, accepted)

    def agent_environment(self, token: str, environment_id: str) -> Environment:
        """The environment whose own agent holds `token`: the token names the owner (one point
        read) and is valid for this one environment only."""
        claim = agent_tokens.parse(token)
        if claim is None or claim.environment_id != environment_id:
            raise Unauthorized("this agent token is not valid for this environment")
        env = self._records.get(claim.owner, environment_id)
        if (
            env is None
            or env.status is Status.DELETED
            or not agent_tokens.matches(token, env.agent_token_hash)
        ):
            raise Unauthorized("this agent token is not valid for this environment")
        return env

    def touch(self, env: Environment) -> None:
        """Note that `env` (as just read) is in use; a write only when the last is a minute old."""
        now = self._clock()
        if now - env.last_accessed_at >= ACTIVITY_WRITE_INTERVAL:
            self._records.touch(env.owner, env.id, now)

    def settle(
        self,
        owner: str,
        environment_id: str,
        operation: str,
        succeeded: bool,
        reason: str,
        actor: Actor = Actor.SYSTEM,
        restorable_days: int | None = None,
        current: Environment | None = None,
        reached: tuple[progress.Phase, datetime] | None = None,
        **fields: Any,
    ) -> Environment | None:
        """Finish an operation: move the record where its transitional status lands (`lifecycle.settle`)
        if `operation` still owns it; `current` as in mutate. Idempotent: settling twice is a no-op,
        and a stale operation (superseded by a newer one) changes nothing. `reached`: the phase the
        operation reached last, and when, noted in the same write (as `reach` would). Returns the
        record as it stands, or None when it no longer exists."""
        now = self._clock()

        def finish(env: Environment) -> Environment | None:
            if env.operation != operation or env.status not in lifecycle.TRANSITIONAL:
                return None
            status = lifecycle.settle(env.status, succeeded)
            extra = lifecycle.settled_fields(status, now, restorable_days, fields)
            steps = (progress.reached(env.progress, *reached) if reached else None) or env.progress
            if steps:
                extra["progress"] = progress.finished(steps, now)
            # A running workspace whose setup failed says so (ResourceMetrics.report noted it).
            why = env.setup_problem if status is Status.RUNNING and env.setup_problem else reason
            return env.model_copy(update={"status": status, "status_reason": why, **extra})

        def change(before: Environment, after: Environment) -> Change:
            # How long each phase of a create or start took, on its own settle only (a stop's
            # record still carries the last start's phases).
            coming_up = before.status in lifecycle.COMING_UP and before.progress
            spent = progress.timings(after.progress) if coming_up else ""
            return Change(actor, f"{reason} ({spent})" if spent else reason, now)

        recalled = self.written(owner, environment_id, operation) if current is None else None
        try:
            return self.mutate(
                owner,
                environment_id,
                finish,
                change,
                include_deleted=True,
                current=current,
                recalled=recalled,
            )
        except NotFound:
            return None

    def reach(
        self,
        owner: str,
        environment_id: str,
        operation: str,
        phase: progress.Phase,
        current: Environment | None = None,
    ) -> Environment | None:
        """Note that `operation` (a create or start, still under way) reached `phase` (nothing is
        written when it had; no audit event: settle puts the timings in the trail). Returns the
        record as it stands, for the caller's next step (None: deleted); `current` as in mutate."""
        now = self._clock()

        def advance(env: Environment) -> Environment | None:
            if env.operation != operation or env.status not in lifecycle.COMING_UP:
                return None
            steps = progress.reached(env.progress, phase, now)
            return None if steps is None else env.model_copy(update={"progress": steps})

        recalled = self.written(owner, environment_id, operation) if current is None else None
        try:
            change = Change(Actor.SYSTEM, phase.value, now)
            return self.mutate(owner, environment_id, advance, change, current=current, recalled=recalled)
        except NotFound:  # deleted meanwhile: nothing to tell
            return None

    def audit(
        self,
        owner: str,
        environment_id: str,
        change: Change,
        *,
        precondition: Callable[[Environment], bool] | None = None,
        refusal: str = "not now",
        unless: Callable[[Environment], bool] | None = None,
        **updates: Any,
    ) -> Environment:
        """Record `change` in the audit trail (status unchanged), with `updates` to the record,
        if `precondition` holds on the fresh record (else InvalidState, nothing written); nothing
        at all when `unless` holds (a re-run activity's note already written)."""

        def note(env: Environment) -> Environment | None:
            if unless is not None and unless(env):
                return None
            if precondition is not None and not precondition(env):
                status = env.status.value
                raise InvalidState(f"environment is {status}; {refusal}", {"status": status})
            return env.model_copy(update=updates)

        return self.mutate(owner, environment_id, note, replace(change, audited=True))

    def written(self, owner: str, environment_id: str, operation: str) -> Environment | None:
        """The record as this process last wrote it for `operation`, to decide a next step on
        without a read; possibly stale, so only for a write its ETag guards (services/written.py)."""
        return self._written.recall(owner, environment_id, operation)

    def launch_failed(self, env: Environment) -> Environment | None:
        """The orchestration of the record's operation could not be started: settle it as failed,
        so it does not wait in a transitional status for nothing (the user may try again)."""
        return self.settle(env.owner, env.id, env.operation or "", False, LAUNCH_FAILED_REASON)

    def mutate(
        self,
        owner: str,
        environment_id: str,
        mutation: Callable[[Environment], Environment | None],
        change: Change | Callable[[Environment, Environment], Change],
        limits: Limits | None = None,
        *,
        include_deleted: bool = False,
        current: Environment | None = None,  # as just read: the first attempt decides on it
        recalled: Environment | None = None,  # as this process last wrote it (`written`)
    ) -> Environment:
        # A stale one fails its ETag check below, and the next attempt reads afresh; a recalled
        # one that calls for no write is decided on again from a fresh read.
        given, unsure = (current, False) if current is not None else (recalled, recalled is not None)
        for _ in range(MAX_WRITE_ATTEMPTS):
            if given is not None:
                current, given = given, None
            elif include_deleted:
                current, unsure = _found(self._records.get(owner, environment_id), include_deleted), False
            else:
                current, unsure = self.get(owner, environment_id), False
            updated = mutation(current)
            if updated is None and unsure:
                continue
            if updated is None:
                return current
            made = change(current, updated) if callable(change) else change
            if metering.rates_change(current, updated):  # the time at the old rates, metered
                updated = metering.metered(current, updated, made.at)
            try:
                saved = self._records.save(current, updated, made, limits)
            except ConcurrencyConflict:
                continue  # someone else wrote first: decide again on the fresh record
            self._written.remember(saved)
            return saved
        raise Conflict("the environment is changing too often; try again")
