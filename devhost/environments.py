"""What the local host does with Dev8's environments when it starts and stops.

On Ctrl-C every environment the host runs is parked: RUNNING records go through a stop
(STOPPING → STOPPED, actor `system`) with their processes ended, and any other process it started
is ended too, so nothing keeps running without the host. At start-up the host ends processes no
live record owns and runs the reconciler once, so no record stays RUNNING without a process.
In-flight orchestrations are resumed from their saved history by the engine.
"""

from __future__ import annotations

import logging

from shared import wiring
from shared.domain.environment import Actor, Status
from shared.domain.lifecycle import Command
from shared.domain.resources import ComputeState, compute_name

log = logging.getLogger("devhost")
SHUTDOWN_REASON = "stopped because the local host was shut down"


def live_compute_names() -> set[str]:
    """Compute names of every record that may own a process (any status but DELETED)."""
    store = wiring.store()
    names = set()
    for status in Status:
        if status is Status.DELETED:
            continue
        for entry in store.index.candidates(status):
            names.add(compute_name(entry.environment_id))
    return names


def end_unowned_processes() -> list[str]:
    """End processes of the local backend that no live record owns (e.g. after a crash)."""
    compute = wiring.compute()
    reconcile = getattr(compute, "reconcile_processes", None)
    if reconcile is None:
        return []
    ended: list[str] = reconcile(live_compute_names())
    if ended:
        log.info("ended %d process(es) with no record: %s", len(ended), ", ".join(ended))
    return ended


def park_all() -> int:
    """Stop every RUNNING environment inline (no orchestration: the host is going away), then end
    whatever else the compute backend still runs. Returns how many environments were stopped."""
    store, service, compute = wiring.store(), wiring.environments(), wiring.compute()
    parked = 0
    for entry in store.index.candidates(Status.RUNNING):
        try:
            result = service.command(
                entry.owner, entry.environment_id, Command.STOP, Actor.SYSTEM, reason=SHUTDOWN_REASON
            )
        except Exception as exc:  # changed meanwhile, or already gone
            log.debug("not parking %s: %s", entry.environment_id, type(exc).__name__)
            continue
        if not result.accepted:
            continue
        env = result.environment
        compute.stop(compute_name(env.id))
        service.settle(env.owner, env.id, env.operation or "", True, SHUTDOWN_REASON)
        parked += 1
    for status in compute.list():
        if status.state in (ComputeState.RUNNING, ComputeState.PENDING):
            compute.stop(status.name)
    return parked
