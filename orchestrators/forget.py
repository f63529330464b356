"""DELETE /me: one orchestration per owner deletes every environment through its normal delete
orchestration (as sub-orchestrations, under the instance ids the API would use), waits for busy
ones to settle, keeps the anonymous usage totals, then erases every row about the owner."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators import jobs
from orchestrators.activities import Result, reported
from orchestrators.blueprint import bp
from orchestrators.lifecycle import RETRY, Orchestration
from shared import wiring
from shared.domain import operation
from shared.settings import get_settings

ROUNDS = 40  # rounds of deleting and waiting before the erasure gives up (DELETE /me again resumes)


@bp.orchestration_trigger(context_name="context", orchestration=operation.FORGET)
def forget_owner(context: df.DurableOrchestrationContext) -> Orchestration:
    job = context.get_input(expected_type=dict)
    erasure_id = str(context.new_uuid())  # the anonymous totals' only key (replays give the same)
    wait = timedelta(seconds=job.get("wait_seconds", jobs.FORGET_WAIT_SECONDS))
    for _ in range(ROUNDS):
        step = yield context.call_activity_with_retry("forget_delete_all", RETRY, job)
        deletes = [
            context.call_sub_orchestrator(d["orchestrator"], d["input"], d["instance_id"])
            for d in step["deleting"]
        ]
        if deletes:
            # A delete that failed left its record in ERROR: the next round asks for it again.
            with contextlib.suppress(Exception):
                yield context.task_all(deletes)
            continue
        if step["waiting"]:
            yield context.create_timer(context.current_utc_datetime + wait)
            continue
        kept = yield context.call_activity_with_retry(
            "forget_keep_totals", RETRY, {**job, "erasure_id": erasure_id}
        )
        if not kept["ok"]:
            continue  # an environment appeared meanwhile: delete it first
        erased = yield context.call_activity_with_retry("forget_erase", RETRY, job)
        if erased["ok"]:
            return {"status": "FORGOTTEN", "environments": erased["environments"]}
    raise RuntimeError(f"some environments could not be deleted after {ROUNDS} rounds; ask again")


@bp.activity_trigger(input_name="job", activity="forget_delete_all")
@reported
def forget_delete_all(job: dict[str, Any]) -> Result:
    deletions = wiring.forgetting().delete_all(job["owner"])
    settings = get_settings()
    deleting = [jobs.run_of(env, settings) for env in deletions.deleting]
    return {"ok": True, "deleting": deleting, "waiting": deletions.waiting}


@bp.activity_trigger(input_name="job", activity="forget_keep_totals")
@reported
def forget_keep_totals(job: dict[str, Any]) -> Result:
    return {"ok": wiring.forgetting().keep_totals(job["owner"], job["erasure_id"])}


@bp.activity_trigger(input_name="job", activity="forget_erase")
@reported
def forget_erase(job: dict[str, Any]) -> Result:
    erased = wiring.forgetting().erase(job["owner"])
    return {"ok": erased is not None, "environments": erased or 0}
