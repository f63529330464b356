"""The stop hand-off's activities: before compute stops, the running workspace is asked for a
final snapshot through its agent, the answer is awaited (orchestrators/lifecycle.py waits with
durable timers and a deadline), and the outcome goes into the audit trail. When no final snapshot
was taken, the record keeps why (`unclean_stop`), and the next start says what was restored."""

from __future__ import annotations

from typing import Any

from orchestrators.activities import Result, environment_of, reported
from orchestrators.blueprint import bp
from shared import wiring
from shared.domain.environment import Actor
from shared.domain.resources import ComputeState, compute_name
from shared.domain.snapshots import Reason, SnapshotEvent
from shared.secrets import SNAPSHOT_PASSWORD_KEY
from shared.services.ports import Change


def _running(environment_id: str) -> bool:
    return wiring.compute().status(compute_name(environment_id)).state is ComputeState.RUNNING


@bp.activity_trigger(input_name="job", activity="ask_for_snapshot")
@reported
def ask_for_snapshot(job: dict[str, Any]) -> Result:
    """Leave the stop's request in the workspace's mailbox (the operation id names it)."""
    env = environment_of(job)
    if SNAPSHOT_PASSWORD_KEY not in wiring.environments().secure_environment(env):
        return {"ok": True, "asked": False, "why": None}  # made before snapshots: nothing to save
    if not _running(env.id):
        return {"ok": True, "asked": False, "why": "the workspace was not running"}
    wiring.agent().ask(env.id, job["operation"], Reason.STOP)
    return {"ok": True, "asked": True}


@bp.activity_trigger(input_name="job", activity="snapshot_answer")
@reported
def snapshot_answer(job: dict[str, Any]) -> Result:
    """The agent's answer, recorded in the snapshot log; or whether it may still come."""
    environment_id = job["environment_id"]
    event = wiring.agent().answer(environment_id, job["operation"])
    if event is None:
        return {"ok": True, "answered": False, "running": _running(environment_id)}
    wiring.snapshots().record_answer(job["owner"], environment_id, event)
    return {"ok": True, "answered": True, "event": event.model_dump(mode="json")}


@bp.activity_trigger(input_name="job", activity="note_final_snapshot")
@reported
def note_final_snapshot(job: dict[str, Any]) -> Result:
    """Write the hand-off's outcome to the audit trail, and withdraw the request."""
    owner, environment_id, outcome = job["owner"], job["environment_id"], job["outcome"]
    event = SnapshotEvent.model_validate(outcome["event"]) if outcome.get("event") else None
    snapshots = wiring.snapshots()
    unclean: str | None = None
    if event is not None and event.event == "snapshot":
        reason = f"final snapshot {event.id} taken ({event.files} files, {event.bytes_added} bytes added)"
    elif event is not None and event.event == "unchanged":
        reason = f"final snapshot: {snapshots.nothing_new_since(owner, environment_id)}"
    else:
        why = outcome.get("why") or "the workspace could not take it"
        unclean = f"{why}; {snapshots.last_snapshot_age(owner, environment_id)}"
        reason = f"no final snapshot: {unclean}"
    if outcome.get("asked"):
        wiring.agent().withdraw(environment_id, job["operation"])
    operation = job["operation"]
    wiring.environments().audit(
        owner,
        environment_id,
        Change(Actor.SYSTEM, reason, wiring.utcnow()),
        unless=lambda env: env.handoff_noted == operation,  # noted already: this is a re-run
        unclean_stop=unclean,
        handoff_noted=operation,
    )
    return {"ok": True, "saved": unclean is None}
