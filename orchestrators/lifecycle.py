"""Lifecycle orchestrations: provision, start, stop and delete one environment.

Orchestrators are replayed from their history, so they stay deterministic: no I/O, no
`datetime.now()`, no randomness; time comes from `context.current_utc_datetime`. Every failure
path ends in ERROR with a human reason, after compensation where compute would keep billing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators.blueprint import bp
from shared.domain import operation

log = logging.getLogger("dev8.orchestrators")

# Transient failures (throttling, timeouts, lost responses) are retried; permanent ones come back
# as {"ok": false} results and are not.
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2_000, max_number_of_attempts=4)

Orchestration = Generator[Any, Any, Any]


class OperationFailed(Exception):
    """A step failed for good; the message is the human reason the record will show."""


def _step(context: df.DurableOrchestrationContext, activity: str, job: dict[str, Any]) -> Orchestration:
    # Inputs of orchestrations started before a field existed lack it: their defaults here.
    grace = timedelta(seconds=job.get("authorization_grace_seconds", 0))
    give_up_at = context.current_utc_datetime + grace
    wait = 15
    while True:
        try:
            result = yield context.call_activity_with_retry(activity, RETRY, job)
        except Exception as exc:  # retries exhausted: the SDK raises the last failure
            raise OperationFailed(f"{activity.replace('_', ' ')} kept failing: {_short(exc)}") from None
        if result.get("ok", False):
            return result
        reason = result.get("error") or f"{activity.replace('_', ' ')} failed"
        if not result.get("authorization"):
            raise OperationFailed(reason)
        if context.current_utc_datetime >= give_up_at:
            minutes = round(grace.total_seconds() / 60)
            raise OperationFailed(
                f"{reason}; still refused after {minutes} minutes: check the app identity's role "
                "assignments (docs/runbook.md)"
            )
        # Role assignments propagating after a deploy: wait, then try the same step again.
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=wait))
        wait = min(wait * 2, 120)


def _wait_until_running(
    context: df.DurableOrchestrationContext, job: dict[str, Any], requested: dict[str, Any]
) -> Orchestration:
    """Poll the compute with durable timers until it runs, fails or the deadline passes; the wait
    between polls is poll_seconds for the first poll_steady_seconds, then doubles up to
    poll_max_seconds. With `first_poll_waits`, the request's answer (`requested`) is the first
    look when it left the compute pending, so the first poll comes after the first wait. Each
    poll carries the last phase seen, so the activity writes progress only when it moved."""
    began = context.current_utc_datetime
    deadline = began + timedelta(seconds=job["deadline_seconds"])
    steady_until = began + timedelta(seconds=job.get("poll_steady_seconds", 0))
    wait = job["poll_seconds"]
    status, phase = requested, requested.get("phase")
    # Absent in inputs from before it existed: those poll at once, as they did.
    seen = bool(job.get("first_poll_waits")) and requested.get("state") == "pending"
    while True:
        if not seen:
            status = yield from _step(context, "compute_status", {**job, "phase": phase})
            phase = status.get("phase") or phase
        seen = False
        if status["state"] == "running":
            return status
        if status["state"] == "absent":
            raise OperationFailed("the compute disappeared while starting")
        if context.current_utc_datetime >= deadline:
            last = f" (last seen: {status['detail']})" if status.get("detail") else ""
            raise OperationFailed(
                f"the environment was not running after {job['deadline_seconds']} seconds{last}"
            )
        # Never sleep past the deadline: the last poll lands on it.
        wake = min(context.current_utc_datetime + timedelta(seconds=wait), deadline)
        yield context.create_timer(wake)
        if context.current_utc_datetime >= steady_until:
            wait = min(wait * 2, job.get("poll_max_seconds", wait))


def _settle(
    context: df.DurableOrchestrationContext, job: dict[str, Any], succeeded: bool, reason: str, **fields: Any
) -> Orchestration:
    """Record the outcome; the record's transitional status says where it lands (lifecycle.settle).
    Returns the orchestration's output: the record's status as it now stands."""
    result = yield context.call_activity_with_retry(
        "settle_environment", RETRY, {**job, "succeeded": succeeded, "reason": reason, **fields}
    )
    return {"status": result.get("status")}


def _compensate(context: df.DurableOrchestrationContext, activity: str, job: dict[str, Any]) -> Orchestration:
    """Best effort: a failed clean-up must not hide the original reason."""
    with contextlib.suppress(Exception):  # the reconciler removes what a failed clean-up leaves
        yield context.call_activity_with_retry(activity, RETRY, job)


def _started(context: df.DurableOrchestrationContext, job: dict[str, Any], name: str) -> None:
    """One log line when the orchestration first runs (not on every replay)."""
    if not context.is_replaying:
        fields = {key: job.get(key) for key in ("request_id", "environment_id", "operation")}
        log.info("orchestration %s started", name, extra=fields)


def _running(
    context: df.DurableOrchestrationContext, job: dict[str, Any], first: str, cleanup: str
) -> Orchestration:
    _started(context, job, operation.PROVISION if first == "create_compute" else operation.START)
    try:
        if first == "create_compute":
            yield from _step(context, "ensure_workspace", job)
        requested = yield from _step(context, first, job)
        ready = yield from _wait_until_running(context, job, requested)
    except OperationFailed as failure:
        context.set_custom_status({"phase": "failed", "reason": str(failure)})
        yield from _compensate(context, cleanup, job)
        settled = yield from _settle(context, job, False, str(failure))
        return {**settled, "reason": str(failure)}
    return (
        yield from _settle(
            context,
            job,
            True,
            "running",
            vs_code_url=ready.get("vs_code_url"),
            ssh_connection_string=ready.get("ssh_connection_string"),
            reached=ready.get("phase"),
            reached_at=ready.get("phase_at"),
        )
    )


@bp.orchestration_trigger(context_name="context", orchestration=operation.PROVISION)
def provision_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """Workspace (kept on failure) → compute → wait until running → RUNNING, or ERROR with the
    compute removed."""
    job = context.get_input(expected_type=dict)
    return (yield from _running(context, job, "create_compute", "delete_compute"))


@bp.orchestration_trigger(context_name="context", orchestration=operation.START)
def start_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """Start (or re-create) the compute → wait until running → RUNNING, or ERROR with the compute
    stopped so it does not bill."""
    job = context.get_input(expected_type=dict)
    return (yield from _running(context, job, "start_compute", "stop_compute"))


def _steps_then(
    context: df.DurableOrchestrationContext,
    job: dict[str, Any],
    steps: tuple[str, ...],
    done: str,
    failed: str,
    **fields: Any,
) -> Orchestration:
    """Run `steps` in order, then settle with reason `done`; if one fails for good, settle as
    failed with the reason."""
    try:
        for activity in steps:
            yield from _step(context, activity, job)
    except OperationFailed as failure:
        settled = yield from _settle(context, job, False, f"{failed}: {failure}")
        return {**settled, "reason": str(failure)}
    return (yield from _settle(context, job, True, done, **fields))


def _final_snapshot(context: df.DurableOrchestrationContext, job: dict[str, Any]) -> Orchestration:
    """Ask the running workspace for a final snapshot and wait for its answer, polling with
    durable timers until the deadline; the outcome goes into the audit trail. Never fails the
    stop: a workspace that cannot answer is stopped anyway, and the trail says what was lost."""
    limit = job.get("snapshot_wait_seconds", 120)
    outcome: dict[str, Any]
    try:
        asked = yield from _step(context, "ask_for_snapshot", job)
        if not asked.get("asked"):
            if not asked.get("why"):
                return None  # this environment keeps no snapshots
            outcome = {"asked": False, "why": asked["why"]}
        else:
            deadline = context.current_utc_datetime + timedelta(seconds=limit)
            wait = 1
            while True:
                answer = yield from _step(context, "snapshot_answer", job)
                if answer.get("answered"):
                    outcome = {"asked": True, "event": answer["event"]}
                    break
                if not answer.get("running"):
                    outcome = {"asked": True, "why": "the workspace stopped before it answered"}
                    break
                if context.current_utc_datetime >= deadline:
                    outcome = {"asked": True, "why": f"the workspace did not answer within {limit} s"}
                    break
                yield context.create_timer(
                    min(context.current_utc_datetime + timedelta(seconds=wait), deadline)
                )
                wait = min(wait * 2, 5)
    except OperationFailed as failure:
        outcome = {"asked": True, "why": f"the workspace could not be asked ({failure})"}
    with contextlib.suppress(OperationFailed):  # the stop goes on even if the note cannot be written
        yield from _step(context, "note_final_snapshot", {**job, "outcome": outcome})
    return None


@bp.orchestration_trigger(context_name="context", orchestration=operation.STOP)
def stop_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """Final snapshot (asked, awaited with a deadline) → stop the compute → STOPPED."""
    job = context.get_input(expected_type=dict)
    _started(context, job, operation.STOP)
    yield from _final_snapshot(context, job)
    return (yield from _steps_then(context, job, ("stop_compute",), "stopped", "stop failed"))


@bp.orchestration_trigger(context_name="context", orchestration=operation.RESTART)
def restart_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """A stop (as above), then a start under its own operation, as a sub-orchestration: a resize
    asked while the environment ran takes effect as that start is accepted."""
    job = context.get_input(expected_type=dict)
    _started(context, job, operation.RESTART)
    yield from _final_snapshot(context, job)
    stopped = yield from _steps_then(
        context, job, ("stop_compute",), operation.STOPPED_TO_RESTART, "stop failed"
    )
    if stopped.get("status") != "STOPPED":
        return stopped  # the stop failed (ERROR, with its reason): nothing to start
    start = yield context.call_activity_with_retry("start_after_restart", RETRY, job)
    child = start.get("start")
    if not child:
        return {**stopped, "reason": start.get("error") or "not started again: it changed meanwhile"}
    return (yield context.call_sub_orchestrator(child["orchestrator"], child["input"], child["instance_id"]))


@bp.orchestration_trigger(context_name="context", orchestration=operation.DELETE)
def delete_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """Compute first, then the workspace, then the record becomes DELETED (gone from the API)."""
    job = context.get_input(expected_type=dict)
    _started(context, job, operation.DELETE)
    steps = ("delete_compute", "delete_workspace")
    return (yield from _steps_then(context, job, steps, "deleted", "delete failed"))


@bp.orchestration_trigger(context_name="context", orchestration=operation.RETIRE)
def retire_environment(context: df.DurableOrchestrationContext) -> Orchestration:
    """Retention: snapshot the workspace, remove the compute, and record DELETED with a restore
    window. The workspace stays until the window closes (Azure Files keeps a snapshot only with
    its share); then `purge_retired_workspace` removes both."""
    job = context.get_input(expected_type=dict)
    return (
        yield from _steps_then(
            context,
            job,
            ("snapshot_workspace", "delete_compute"),
            job.get("reason") or "retired",
            "retirement failed",
            restorable_days=job["restore_grace_days"],
        )
    )


@bp.orchestration_trigger(context_name="context", orchestration=operation.PURGE)
def purge_retired_workspace(context: df.DurableOrchestrationContext) -> Orchestration:
    job = context.get_input(expected_type=dict)
    yield from _step(context, "purge_workspace", job)
    return {"status": "PURGED"}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
