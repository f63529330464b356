"""Activities: the only code that touches compute and workspace storage, through the ports.

Every activity may run more than once (a host can crash after the work and before the result is
recorded), so each one is idempotent: deterministic resource names, create-if-absent, and
delete treating "already gone" as done.

Transient backend errors raise, so `call_activity_with_retry` retries them. Permanent ones come
back as `{"ok": false, "error": ...}`: retrying cannot help, and the orchestration fails at once.
An identity Azure refused comes back with `"authorization": true`: the orchestration waits and
tries again for a bounded time (role assignments propagating after a deploy) before it fails.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from orchestrators import jobs
from orchestrators.blueprint import bp
from shared import agent_tokens, observability, templates, wiring
from shared.domain import lifecycle
from shared.domain.environment import Actor, Environment, Status
from shared.domain.progress import Phase
from shared.domain.resources import (
    SNAPSHOT_REPOSITORY,
    ComputeState,
    compute_name,
    image_reference,
    workspace_name,
)
from shared.domain.snapshots import SNAPSHOT_ID
from shared.domain.variables import SESSION_VARIABLES
from shared.errors import AuthorizationRefused, DomainError, PermanentBackendError
from shared.services.ports import Change, ComputeSpec, ComputeStatus
from shared.services.snapshots import LATEST
from shared.settings import Settings, get_settings

log = logging.getLogger("dev8.activities")


def snapshot_policy(settings: Settings) -> dict[str, str]:
    """What the workspace's snapshot agent reads: how often to save, and what pruning keeps."""
    return {
        "DEV8_SNAPSHOT_INTERVAL_SECONDS": str(settings.snapshot_interval_seconds),
        "DEV8_SNAPSHOT_KEEP_LAST": str(settings.snapshot_keep_last),
        "DEV8_SNAPSHOT_KEEP_HOURLY": str(settings.snapshot_keep_hourly),
        "DEV8_SNAPSHOT_KEEP_DAILY": str(settings.snapshot_keep_daily),
    }


Result = dict[str, Any]


def reported(activity: Callable[[dict[str, Any]], Result]) -> Callable[[dict[str, Any]], Result]:
    """The activity with its job's request id, environment and operation on every log line, and
    one line when it ends."""

    @functools.wraps(activity)
    def run(job: dict[str, Any]) -> Result:
        with observability.bound(
            request_id=job.get("request_id"),
            environment_id=job.get("environment_id"),
            operation=job.get("operation"),
        ):
            began = time.perf_counter()
            result = _run(activity, job)
            log.info(
                "activity %s: %s",
                activity.__name__,
                "ok" if result.get("ok", True) else "failed",
                extra={
                    "activity": activity.__name__,
                    "duration_ms": round((time.perf_counter() - began) * 1000, 1),
                },
            )
            if not result.get("ok", True):
                observability.count("dev8.failures", step=activity.__name__)
            return result

    return run


def _run(activity: Callable[[dict[str, Any]], Result], job: dict[str, Any]) -> Result:
    """Permanent failures as results; transient ones raise, for the orchestration's retry."""
    try:
        return activity(job)
    except AuthorizationRefused as exc:
        log.warning("%s refused for %s: %s", activity.__name__, job.get("environment_id"), exc)
        return {"ok": False, "error": str(exc), "authorization": True}
    except PermanentBackendError as exc:
        log.warning("%s failed for %s: %s", activity.__name__, job.get("environment_id"), exc)
        return {"ok": False, "error": str(exc)}


def environment_of(job: dict[str, Any]) -> Environment:
    env = wiring.store().get(job["owner"], job["environment_id"])
    if env is None:
        raise PermanentBackendError("the environment record no longer exists")
    return env


def _image_of(env: Environment) -> str:
    template = templates.catalog().find(env.template)
    if template is None:  # taken out of the catalog since it was created
        raise PermanentBackendError(f"the template {env.template!r} is no longer offered")
    return template.image


def _spec(env: Environment) -> ComputeSpec:
    settings = get_settings()
    workspace = wiring.workspaces().ensure(workspace_name(env.id), env.storage_gb)
    variables = dict(env.environment_variables)
    if env.environment_variables:  # the user's, for SSH sessions too
        variables[SESSION_VARIABLES] = " ".join(sorted(env.environment_variables))
    variables["DEV8_ENVIRONMENT_ID"] = env.id
    variables["DEV8_CPU_CORES"] = f"{env.cpu_cores:g}"  # the agent's CPU percent is of these
    variables[agent_tokens.ACTIVITY_URL_VARIABLE] = agent_tokens.activity_url(
        settings.public_base_url, env.id
    )
    variables[agent_tokens.REPORT_URL_VARIABLE] = agent_tokens.snapshot_report_url(
        settings.public_base_url, env.id
    )
    if env.repository_url:
        variables["REPOSITORY_URL"] = env.repository_url
    if env.dotfiles_url:
        variables["DOTFILES_URL"] = env.dotfiles_url
    variables.update(snapshot_policy(settings))
    if env.restore_snapshot:
        variables["DEV8_SNAPSHOT_RESTORE"] = env.restore_snapshot
    return ComputeSpec(
        name=compute_name(env.id),
        environment_id=env.id,
        owner=env.owner,
        image=image_reference(settings.registry, _image_of(env), settings.image_tag),
        cpu_cores=env.cpu_cores,
        memory_gb=env.memory_gb,
        ports=tuple(env.ports),
        environment_variables=variables,
        workspace=workspace,
        secure_environment=wiring.environments().secure_environment(env),
    )


def _compute_result(status: ComputeStatus) -> Result:
    return {
        "ok": status.state is not ComputeState.FAILED,
        "state": status.state.value,
        "vs_code_url": status.vs_code_url,
        "ssh_connection_string": status.ssh_connection_string,
        "error": status.detail if status.state is ComputeState.FAILED else None,
        "detail": status.detail,
        "phase": status.phase.value if status.phase else None,
    }


def _reach(
    job: dict[str, Any], phase: Phase | None, current: Environment | None = None
) -> Environment | None:
    """Put the phase a create or start reached on the record, for progress bars; the job's
    `phase` is the last one the orchestration saw, so an unchanged poll costs no table read.
    Returns the record as it stands when it was read or written (else `current`, which the
    write decides on first: a stale one is refused by its ETag and read again; without it,
    `reach` decides first on the record as this process last wrote it for the operation)."""
    if phase is not None and job.get("operation") and phase.value != job.get("phase"):
        owner, environment_id, operation = job["owner"], job["environment_id"], job["operation"]
        return wiring.environments().reach(owner, environment_id, operation, phase, current)
    return current


def _requested(
    job: dict[str, Any], request: Callable[[Environment], ComputeStatus], env: Environment | None = None
) -> Result:
    """Ask for the compute, with the phases on the record; the record each step read serves the
    next (`env`: as the caller read it), so a create costs no read of its own."""
    env = _reach(job, Phase.COMPUTE_REQUESTED, env) or env or environment_of(job)
    status = request(env)
    _reach(job, status.phase, env)
    return _compute_result(status)


@bp.activity_trigger(input_name="job", activity="ensure_workspace")
@reported
def ensure_workspace(job: dict[str, Any]) -> Result:
    """Create the workspace; for an environment restored from another one, fill it with a copy
    of that one's snapshot repository (its first start restores the chosen snapshot)."""
    env = _reach(job, Phase.WORKSPACE) or environment_of(job)
    storage = wiring.workspaces()
    if not env.restored_from:
        return {"ok": True, "workspace": storage.ensure(workspace_name(env.id), env.storage_gb).name}
    source = wiring.store().get(env.owner, env.restored_from)
    if source is None or not storage.exists(workspace_name(source.id)):
        raise PermanentBackendError("the environment to restore from no longer has a workspace")
    if env.restore_snapshot is None and source.snapshot and not _restic_snapshot(source.snapshot):
        # Retired before snapshots moved into the repository: an Azure Files share snapshot.
        workspace = storage.restore(
            workspace_name(source.id), source.snapshot, workspace_name(env.id), env.storage_gb
        )
    else:
        workspace = storage.copy(
            workspace_name(source.id), SNAPSHOT_REPOSITORY, workspace_name(env.id), env.storage_gb
        )
    return {"ok": True, "workspace": workspace.name}


def _restic_snapshot(snapshot: str) -> bool:
    return snapshot == LATEST or SNAPSHOT_ID.fullmatch(snapshot) is not None


@bp.activity_trigger(input_name="job", activity="snapshot_workspace")
@reported
def snapshot_workspace(job: dict[str, Any]) -> Result:
    """Retirement: the repository on the share is kept for the restore window, and the record
    names the snapshot to restore from (the newest its workspace reported)."""
    snapshot = wiring.snapshots().remember_snapshot(job["owner"], job["environment_id"], job["operation"])
    return {"ok": True, "snapshot": snapshot}


@bp.activity_trigger(input_name="job", activity="create_compute")
@reported
def create_compute(job: dict[str, Any]) -> Result:
    return _requested(job, lambda env: wiring.compute().create(_spec(env)))


@bp.activity_trigger(input_name="job", activity="start_compute")
@reported
def start_compute(job: dict[str, Any]) -> Result:
    env = environment_of(job)
    backend = wiring.compute()
    current = backend.status(compute_name(env.id))
    spec = _spec(env)
    # An environment in ERROR may have lost its compute: starting it again means creating it.
    if current.state is ComputeState.ABSENT:
        return _requested(job, lambda _: backend.create(spec), env)
    return _requested(job, lambda _: backend.start(spec), env)


@bp.activity_trigger(input_name="job", activity="compute_status")
@reported
def compute_status(job: dict[str, Any]) -> Result:
    status = wiring.compute().status(compute_name(job["environment_id"]))
    result = _compute_result(status)
    if status.state is ComputeState.RUNNING:
        # The phase that comes with running (the IDE answers) is written by the settle that
        # follows at once, with the time it was seen here: one write of the record, not two.
        result["phase_at"] = wiring.utcnow().isoformat()
    else:
        _reach(job, status.phase)
    return result


@bp.activity_trigger(input_name="job", activity="stop_compute")
@reported
def stop_compute(job: dict[str, Any]) -> Result:
    return _compute_result(wiring.compute().stop(compute_name(job["environment_id"])))


@bp.activity_trigger(input_name="job", activity="delete_compute")
@reported
def delete_compute(job: dict[str, Any]) -> Result:
    wiring.compute().delete(compute_name(job["environment_id"]))
    return {"ok": True}


@bp.activity_trigger(input_name="job", activity="delete_workspace")
@reported
def delete_workspace(job: dict[str, Any]) -> Result:
    wiring.workspaces().delete(workspace_name(job["environment_id"]))
    return {"ok": True}


@bp.activity_trigger(input_name="job", activity="purge_workspace")
@reported
def purge_workspace(job: dict[str, Any]) -> Result:
    """Delete a retired environment's workspace and snapshots once its restore window closed."""
    wiring.workspaces().delete(workspace_name(job["environment_id"]))
    wiring.snapshots().forget_snapshot(job["owner"], job["environment_id"])
    return {"ok": True}


@bp.activity_trigger(input_name="job", activity="settle_environment")
@reported
def settle_environment(job: dict[str, Any]) -> Result:
    """Record the outcome of an operation on the environment (no-op when already recorded)."""
    fields: dict[str, Any] = {
        key: job[key] for key in ("vs_code_url", "ssh_connection_string") if job.get(key) is not None
    }
    if job.get("restorable_days"):
        fields["restorable_days"] = int(job["restorable_days"])
    # An input scheduled before a deploy names the status instead of the outcome.
    succeeded = job["succeeded"] if "succeeded" in job else job.get("status") != Status.ERROR.value
    reason = job["reason"]
    if job.get("reached") and job.get("reached_at"):  # the last phase, seen with running
        fields["reached"] = (Phase(job["reached"]), datetime.fromisoformat(job["reached_at"]))
    owner, environment_id, operation = job["owner"], job["environment_id"], job["operation"]
    service = wiring.environments()
    # As the step before wrote it, when it ran here: settle recalls it too (services/written.py).
    recalled = service.written(owner, environment_id, operation)
    current = recalled or wiring.store().get(owner, environment_id)
    if succeeded and current is not None and current.status in lifecycle.COMING_UP:
        began = current.created_at if current.status is Status.CREATING else current.updated_at
        observability.record_ready(current.status.value.lower(), (wiring.utcnow() - began).total_seconds())
        restored = _restored(current)
        if restored:
            reason = f"{reason}; {restored}"
            fields.update(restore_snapshot=None, unclean_stop=None)
    env = service.settle(
        owner,
        environment_id,
        operation,
        bool(succeeded),
        reason,
        current=None if recalled else current,
        **fields,
    )
    return {"ok": True, "status": env.status.value if env else None}


def _restored(env: Environment) -> str:
    """What the audit trail says about the tree a start restored, when it is not simply the
    latest snapshot of a clean stop."""
    if env.restore_snapshot:
        source = f" of {env.restored_from}" if env.restored_from and env.status is Status.CREATING else ""
        return f"restored snapshot {env.restore_snapshot}{source}"
    if env.unclean_stop:
        log = wiring.store().snapshot_logs.snapshot_log(env.owner, env.id)
        latest = log.latest
        tree = (
            f"the working tree is snapshot {latest.id} taken at {latest.taken_at:%Y-%m-%dT%H:%M:%SZ}"
            if latest
            else "no snapshot existed, so the working tree started empty"
        )
        return (
            f"the last session ended without a final snapshot ({env.unclean_stop}): {tree}; "
            "later changes were lost"
        )
    return ""


@bp.activity_trigger(input_name="job", activity="start_after_restart")
@reported
def start_after_restart(job: dict[str, Any]) -> Result:
    """A restart's start, once its stop settled: the start orchestration to run, or none (the
    record changed meanwhile, or the budget no longer allows it: it stays STOPPED, and says why)."""
    owner, environment_id = job["owner"], job["environment_id"]
    try:
        env = wiring.resizing().start_after_restart(owner, environment_id, job["operation"])
    except DomainError as refused:
        change = Change(Actor.SYSTEM, f"not started again: {refused.message}", wiring.utcnow())
        # The record says why it stays STOPPED (no longer "stopped to restart": clients stop waiting).
        wiring.environments().audit(owner, environment_id, change, status_reason=change.reason)
        return {"ok": True, "start": None, "error": refused.message}
    if env is None:
        return {"ok": True, "start": None}
    return {"ok": True, "start": jobs.run_of(env, get_settings())}
