"""What the timers decide, as pure functions of (record, clock, policy): the idle sweep, retention
and the reconciler. The services read the candidates, ask here, and act through the same
ETag-guarded commands users go through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.environment import Environment, Policy, Status
from shared.domain.lifecycle import TRANSITIONAL
from shared.domain.resources import ComputeState

# --- idle sweep and retention ---------------------------------------------------------------------


def stop_reason(env: Environment, now: datetime, policy: Policy) -> str | None:
    """Why the idle sweep stops this environment now, or None to leave it running."""
    if env.status is not Status.RUNNING:
        return None
    session_end = env.session_stop_at(policy)
    if session_end is not None and session_end <= now:
        return f"session limit of {policy.max_session_hours} hours reached"
    idle_end = env.idle_stop_at
    if idle_end is not None and idle_end <= now:
        return f"idle for {env.idle_timeout_minutes} minutes"
    return None


def retire_reason(env: Environment, now: datetime, policy: Policy) -> str | None:
    """Why retention retires this environment now, or None to keep it."""
    delete_at = env.delete_at(policy)
    if delete_at is None or delete_at > now:
        return None
    return f"stopped and untouched for {policy.retention_days} days"


def purge_due(env: Environment | None, now: datetime) -> bool:
    """Whether a retired environment's restore window has closed (its workspace may go)."""
    return (
        env is not None
        and env.status is Status.DELETED
        and bool(env.snapshot)
        and env.restorable_until is not None
        and env.restorable_until <= now
    )


# --- reconciler ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    stuck_after: timedelta  # a transitional record untouched this long, with no orchestration, is stuck
    orphan_grace: timedelta  # compute without a live record is removed after this long
    max_redrives: int = 1  # times a stuck operation is re-run before it fails


def orphaned(record: Environment | None) -> bool:
    """Compute whose record is missing or DELETED belongs to nobody."""
    return record is None or record.status is Status.DELETED


def orphan_due(first_seen: datetime, now: datetime, policy: ReconcilePolicy) -> bool:
    return now - first_seen >= policy.orphan_grace


def lost_compute_reason(state: ComputeState, detail: str | None = None) -> str | None:
    """Why a RUNNING record is stopped when its compute is in `state`, or None when it is fine
    (running, or still coming up)."""
    if state in (ComputeState.RUNNING, ComputeState.PENDING):
        return None
    if state is ComputeState.ABSENT:
        return "stopped because its compute was gone"
    if state is ComputeState.STOPPED:
        return "stopped because its compute was stopped outside Dev8"
    return f"stopped because its compute failed: {detail or ''}".rstrip(": ")


class Recovery(StrEnum):
    REDRIVE = "redrive"  # run the same operation again (activities are idempotent)
    FAIL = "fail"  # re-driven enough: settle it as failed


def stuck(env: Environment, now: datetime, policy: ReconcilePolicy) -> bool:
    """Whether a transitional record has waited long enough that its orchestration is worth
    asking about (the caller then checks that it no longer runs)."""
    return (
        env.status in TRANSITIONAL
        and env.operation is not None
        and now - env.updated_at >= policy.stuck_after
    )


def recovery(env: Environment, policy: ReconcilePolicy) -> Recovery:
    """What becomes of a stuck record whose orchestration no longer runs."""
    return Recovery.REDRIVE if env.redrives < policy.max_redrives else Recovery.FAIL


def interrupted_reason(env: Environment) -> str:
    return f"{env.status.value.lower()} was interrupted and could not be completed; try again"


def stop_error_compute(
    env: Environment | None, state: ComputeState, now: datetime, policy: ReconcilePolicy
) -> bool:
    """Whether compute still billing under an ERROR record should be stopped (never deleted): the
    record settled a while ago and stayed ERROR, so no start is bringing it back."""
    return (
        env is not None
        and env.status is Status.ERROR
        and state in (ComputeState.RUNNING, ComputeState.PENDING)
        and now - env.updated_at >= policy.orphan_grace
    )
