"""The timers that keep costs down and records true. Schedules are app settings (NCRONTAB)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from orchestrators.launch import alive_checker, launch_all
from shared import observability, wiring
from shared.domain import operation

bp = df.Blueprint()
log = logging.getLogger("dev8.timers")


@bp.timer_trigger(schedule="%DEV8_IDLE_SWEEP_SCHEDULE%", arg_name="timer")
@bp.durable_client_input(client_name="client")
async def idle_sweep(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Stop environments idle past their timeout, or running past the session limit; then the
    budget pass."""
    observability.bind(request_id=f"idle-sweep-{uuid.uuid4().hex[:12]}")  # this pass, in every log line
    report = await asyncio.to_thread(wiring.sweeps().idle)
    started = await launch_all(client, [result.environment for result in report.accepted])
    log.info(
        "idle sweep: %d candidates, %d stopping, %d repaired", report.candidates, started, report.repaired
    )
    observability.count("dev8.sweeps", started, action="idle-stop")
    # Monthly budgets ride the same timer: 80% noted once a month, 100% stops what runs.
    budgets = await asyncio.to_thread(wiring.sweeps().budgets)
    stopped = await launch_all(client, [result.environment for result in budgets.accepted])
    if budgets.candidates:
        log.info("budget sweep: %d running past 80%%, %d stopping", budgets.candidates, stopped)
    observability.count("dev8.sweeps", stopped, action="budget-stop")


@bp.timer_trigger(schedule="%DEV8_RETENTION_SCHEDULE%", arg_name="timer")
@bp.durable_client_input(client_name="client")
async def retention_sweep(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Retire long-stopped environments, purge expired workspaces, ask for snapshot pruning."""
    observability.bind(request_id=f"retention-{uuid.uuid4().hex[:12]}")
    report = await asyncio.to_thread(wiring.sweeps().retention)
    retiring = [result.environment for result in report.accepted]
    started = await launch_all(client, retiring)
    purges = await asyncio.to_thread(wiring.sweeps().expired_snapshots)
    for owner, environment_id in purges:
        try:
            await client.start_new(
                operation.PURGE,
                instance_id=operation.purge_instance_id(environment_id),
                client_input={"owner": owner, "environment_id": environment_id},
            )
        except Exception as exc:  # still running from an earlier pass, or Durable is down: next pass
            log.warning("could not start the purge of %s (%s)", environment_id, type(exc).__name__)
    pruning = 0
    try:
        pruning = await asyncio.to_thread(wiring.snapshots().prune_pass, wiring.store().index)
    except Exception as exc:  # a share that cannot be written now is asked again tomorrow
        log.warning("could not ask every workspace to prune its snapshots (%s)", type(exc).__name__)
    log.info("retention: %d retiring, %d purged, %d asked to prune snapshots", started, len(purges), pruning)
    observability.count("dev8.sweeps", started, action="retire")
    observability.count("dev8.sweeps", len(purges), action="purge")


@bp.timer_trigger(schedule="%DEV8_RECONCILE_SCHEDULE%", arg_name="timer")
@bp.durable_client_input(client_name="client")
async def reconcile(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Repair drift between the records and the compute backend; expire old resource samples."""
    observability.bind(request_id=f"reconcile-{uuid.uuid4().hex[:12]}")
    alive = alive_checker(client, asyncio.get_running_loop())
    report = await asyncio.to_thread(wiring.reconciler().run, alive)
    await launch_all(client, report.launches)
    log.info(
        "reconcile: %d stopped, %d re-driven, %d failed, %d orphans removed, %d orphans waiting",
        len(report.stopped),
        len(report.redriven),
        len(report.failed),
        len(report.orphans_removed),
        len(report.orphans_waiting),
    )
    observability.count("dev8.sweeps", len(report.stopped), action="reconcile-stop")
    observability.count("dev8.sweeps", len(report.redriven), action="reconcile-redrive")
    observability.count("dev8.sweeps", len(report.orphans_removed), action="orphan-removed")
    # Resource samples past their window (samples.WINDOW) go on the same timer: a filtered scan of
    # hour rows, a few pages even for a large fleet.
    try:
        expired = await asyncio.to_thread(wiring.metrics().expire)
    except Exception as exc:  # the next pass deletes them; reads never show them meanwhile
        log.warning("could not expire resource samples (%s)", type(exc).__name__)
    else:
        log.info("resource samples: %d hour blocks expired", expired)
