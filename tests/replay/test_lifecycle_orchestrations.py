"""The real lifecycle orchestrators, replayed by the real Durable SDK through devhost's engine,
with activities on the simulated compute, local workspaces and Azurite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

import orchestrators
from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import DurableEngine, RuntimeStatus
from orchestrators import jobs
from shared import wiring
from shared.domain import operation
from shared.domain.environment import Status
from shared.domain.lifecycle import Command
from shared.domain.operation import Kind
from shared.domain.requests import CreateEnvironmentRequest, UpdateEnvironmentRequest
from shared.domain.resources import ComputeState, compute_name, workspace_name
from shared.settings import ComputeBackendName, get_settings

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
OWNER = "replay-user"


def engine_for(clock: ManualClock, **options) -> DurableEngine:
    app = df.DFApp()
    app.register_functions(orchestrators.bp)
    return DurableEngine.from_app(app, clock=clock, **options)


def run(engine: DurableEngine, clock: ManualClock, instance_id: str, max_timers: int = 500):
    """Drive an instance to the end: run everything runnable, then fire the next durable timer."""
    for _ in range(max_timers):
        engine.run_until_idle()
        status = engine.status(instance_id)
        if status.runtime_status.is_terminal:
            return status
        assert clock.advance_to_next_timer() is not None, "orchestration is stuck without a timer"
    raise AssertionError("orchestration did not finish")


def create(name: str = "replayed", **fields):
    request = CreateEnvironmentRequest.model_validate({"name": name, "template": "node", **fields})
    return wiring.environments().create(OWNER, request).environment


def launch(engine: DurableEngine, orchestration: str, env) -> str:
    return engine.start(orchestration, jobs.job_for(env, get_settings()), instance_id=env.operation)


def command(engine: DurableEngine, clock: ManualClock, env_id: str, what: Command):
    result = wiring.environments().command(OWNER, env_id, what)
    assert result.accepted
    status = run(engine, clock, launch(engine, operation.ORCHESTRATOR[Kind(what.value)], result.environment))
    assert status.runtime_status is RuntimeStatus.COMPLETED
    return status


def history_of(engine: DurableEngine, instance_id: str):
    return engine.status(instance_id).history


def scheduled(engine: DurableEngine, instance_id: str, name: str) -> int:
    history = history_of(engine, instance_id)
    return sum(1 for e in history if e["EventType"] == HistoryEventType.TASK_SCHEDULED and e["Name"] == name)


def events_of(engine: DurableEngine, instance_id: str, kind: HistoryEventType) -> int:
    return sum(1 for e in history_of(engine, instance_id) if e["EventType"] == kind)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def engine(app_env, clock) -> DurableEngine:
    return engine_for(clock)


def test_provision_waits_with_durable_timers_then_runs(engine, clock):
    env = create(secrets={"GITHUB_TOKEN": "ghp_replay", "SSH_PUBLIC_KEY": "ssh-ed25519 AAAA"})
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.runtime_status is RuntimeStatus.COMPLETED
    assert status.output == {"status": "RUNNING"}
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.RUNNING and record.vs_code_url and record.started_at
    # Two PENDING polls (DEV8_SIMULATED_BOOT_POLLS=2) mean two durable timers.
    assert events_of(engine, env.operation, HistoryEventType.TIMER_FIRED) == 2
    compute = wiring.compute()
    assert compute.creations == 1
    # Secrets reached the compute backend, and nothing but the ids is in the orchestration history.
    assert {"GITHUB_TOKEN", "SSH_PUBLIC_KEY", "PASSWORD"} <= compute.received_secret_names(
        compute_name(env.id)
    )
    assert "ghp_replay" not in str(history_of(engine, env.operation))
    assert Path(get_settings().local_data_dir, "workspaces", workspace_name(env.id)).is_dir()


def test_each_activity_decides_on_the_record_the_step_before_wrote(engine, clock):
    """A create's steps run in the process that wrote its record, each deciding on the record as
    the step before wrote it (services/written.py): no step reads it; the CREATING index row, a
    status no record returns to, is deleted without reading it first."""
    env = create()
    stats = wiring.store().stats
    stats.reset()
    run(engine, clock, launch(engine, operation.PROVISION, env))
    reads = stats.snapshot()["point_reads"]
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.RUNNING
    # ensure_workspace on the record as the create wrote it; create_compute (two phases:
    # requested, then the image pulling), the poll that saw the container start and
    # settle_environment each on the record as the step before wrote it. The poll that found it
    # running leaves its phase (the IDE answers) to the settle's write. 10 reads two changes ago:
    # 2 each for the first two steps and settle_environment, the index row read before its
    # delete, and the last poll's; 4 before this one, one per step.
    assert reads == 0
    assert [step.phase.value for step in record.progress] == [
        "workspace",
        "compute_requested",
        "image_pulling",
        "container_started",
        "ide_answering",
    ]
    assert record.progress[-1].ended_at is not None  # the settle ended the phase it wrote
    assert [entry.environment_id for entry in wiring.store().index.candidates(Status.CREATING)] == []
    command(engine, clock, env.id, Command.STOP)
    stats.reset()
    command(engine, clock, env.id, Command.START)
    # The command's three (the record, the owner's usage, the STOPPED index row before its delete),
    # start_compute's one (its phases written on the record it read: it builds the compute's
    # spec, so it reads the record as it stands), and the STARTING row's before its delete (a
    # status records return to: a newer start's row must stay). The first poll and
    # settle_environment decide on the record as the step before wrote it. 10 two changes ago:
    # start_compute read twice more, and the poll that saw it running once; 7 before this one.
    assert stats.snapshot()["point_reads"] == 3 + 1 + 1


def test_stop_start_delete(engine, clock):
    env = create()
    run(engine, clock, launch(engine, operation.PROVISION, env))
    workspace = Path(get_settings().local_data_dir, "workspaces", workspace_name(env.id))
    (workspace / "notes.txt").write_text("keep me")

    command(engine, clock, env.id, Command.STOP)
    stopped = wiring.environments().get(OWNER, env.id)
    assert stopped.status is Status.STOPPED and stopped.stopped_at >= stopped.started_at
    assert wiring.compute().status(compute_name(env.id)).state is ComputeState.STOPPED

    command(engine, clock, env.id, Command.START)
    assert wiring.environments().get(OWNER, env.id).status is Status.RUNNING
    assert (workspace / "notes.txt").read_text() == "keep me"

    command(engine, clock, env.id, Command.DELETE)
    assert wiring.store().get(OWNER, env.id).status is Status.DELETED
    assert wiring.compute().status(compute_name(env.id)).state is ComputeState.ABSENT
    assert not workspace.exists()
    assert wiring.environments().list(OWNER) == []


def test_permanent_compute_failure_ends_in_error_with_compensation(engine, clock):
    env = create()
    wiring.compute().fail_next("create", permanent=True, message="image dev8-node:latest not found")
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output["status"] == "ERROR"
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.ERROR
    assert record.status_reason == "image dev8-node:latest not found"
    assert scheduled(engine, env.operation, "create_compute") == 1  # permanent: not retried
    assert scheduled(engine, env.operation, "delete_compute") == 1  # compensation ran
    assert wiring.compute().status(compute_name(env.id)).state is ComputeState.ABSENT
    assert wiring.workspaces().exists(workspace_name(env.id))  # the workspace is kept


def test_compute_that_fails_while_booting_is_removed(engine, clock):
    env = create(name="x")
    launch(engine, operation.PROVISION, env)
    engine.run_until_idle()
    # The container crashes after creation (e.g. a broken image entrypoint).
    wiring.compute().fail_next("status", permanent=True, message="container exited with code 1")
    status = run(engine, clock, env.operation)
    assert status.output["status"] == "ERROR"
    assert wiring.environments().get(OWNER, env.id).status_reason == "container exited with code 1"
    assert wiring.compute().status(compute_name(env.id)).state is ComputeState.ABSENT


def test_transient_failures_are_retried_then_succeed(engine, clock):
    env = create()
    wiring.compute().fail_next("create", permanent=False, message="429 too many requests", times=2)
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output == {"status": "RUNNING"}
    assert scheduled(engine, env.operation, "create_compute") == 3
    assert events_of(engine, env.operation, HistoryEventType.TASK_FAILED) == 2
    assert wiring.compute().creations == 1


def test_retries_exhausted_end_in_error(engine, clock):
    env = create()
    wiring.compute().fail_next("create", permanent=False, message="service unavailable", times=10)
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output["status"] == "ERROR"
    reason = wiring.environments().get(OWNER, env.id).status_reason
    assert reason.startswith("create compute kept failing") and "service unavailable" in reason
    assert scheduled(engine, env.operation, "create_compute") == 4  # RetryOptions max attempts


def test_deadline_passed_ends_in_error(app_env, clock):
    app_env.setenv("DEV8_SIMULATED_BOOT_POLLS", "100")
    app_env.setenv("DEV8_PROVISION_TIMEOUT_SECONDS", "30")
    wiring.reset()
    engine = engine_for(clock)
    env = create()
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output["status"] == "ERROR"
    record = wiring.environments().get(OWNER, env.id)
    assert record.status_reason.startswith("the environment was not running after 30 seconds (last seen: ")
    assert wiring.compute().status(compute_name(env.id)).state is ComputeState.ABSENT


def test_local_and_simulated_compute_is_polled_often_then_backs_off(app_env, clock):
    """Backing off from 3 s is for ARM's rate-limited reads (tests/azure); a local poll costs
    nothing, so a booting code-server is looked at every half second for the first 10 s (seen
    RUNNING within half a second of answering), then the wait doubles to 3 s, so one that never
    answers does not fill its history with polls."""
    app_env.setenv("DEV8_SIMULATED_BOOT_POLLS", "100")
    app_env.setenv("DEV8_PROVISION_TIMEOUT_SECONDS", "30")
    wiring.reset()
    engine = engine_for(clock)
    env = create()
    job = jobs.job_for(env, get_settings())
    assert (job["poll_seconds"], job["poll_steady_seconds"]) == (0.5, 10)
    run(engine, clock, launch(engine, operation.PROVISION, env))
    history = engine.status(env.operation).history
    began = datetime.fromisoformat(history[0]["Timestamp"].replace("Z", "+00:00"))
    fired = [
        datetime.fromisoformat(e["FireAt"].replace("Z", "+00:00"))
        for e in history
        if e["EventType"] == HistoryEventType.TIMER_CREATED
    ]
    gaps = [round((b - a).total_seconds(), 2) for a, b in zip([began, *fired], fired, strict=False)]
    # 20 half-second waits to the 10 s mark, then 1, 2 and 3 s, then 3 s until the last poll
    # lands on the 30 s deadline (2 s after the 28 s one).
    assert gaps == [0.5] * 20 + [1, 2, 3, 3, 3, 3, 3, 2], gaps


def test_on_aci_the_first_poll_waits_since_the_request_just_answered(engine, clock):
    """ACI's create answers with the group's state: polling at once would only ask ARM the same,
    so that answer is the first look and the first poll comes after the first wait, one poll
    fewer on the same schedule; local and simulated compute (a code-server may answer within the
    second) poll at once."""
    aci = get_settings().model_copy(update={"compute_backend": ComputeBackendName.ACI})
    env = create()
    assert jobs.job_for(env, aci)["first_poll_waits"] is True
    assert jobs.job_for(env, get_settings())["first_poll_waits"] is False
    job = {**jobs.job_for(env, get_settings()), "first_poll_waits": True}
    status = run(engine, clock, engine.start(operation.PROVISION, job, instance_id=env.operation))
    assert status.output == {"status": "RUNNING"}
    steps = [
        e.get("Name") or HistoryEventType(e["EventType"]).name
        for e in history_of(engine, env.operation)
        if e["EventType"] in (HistoryEventType.TASK_SCHEDULED, HistoryEventType.TIMER_CREATED)
    ]
    assert steps[:4] == ["ensure_workspace", "create_compute", "TIMER_CREATED", "compute_status"], steps

    other = create("polled-at-once")
    run(engine, clock, launch(engine, operation.PROVISION, other))
    steps = [
        e.get("Name")
        for e in history_of(engine, other.operation)
        if e["EventType"] == HistoryEventType.TASK_SCHEDULED
    ]
    assert steps[:3] == ["ensure_workspace", "create_compute", "compute_status"], steps


def test_every_activity_run_twice_still_makes_one_compute(app_env, clock):
    engine = engine_for(clock, duplicate_activities=True)
    env = create()
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output == {"status": "RUNNING"}
    assert wiring.compute().creations == 1
    assert wiring.compute().calls("create") == 2  # it really ran twice
    command(engine, clock, env.id, Command.STOP)
    command(engine, clock, env.id, Command.DELETE)
    assert wiring.store().get(OWNER, env.id).status is Status.DELETED
    trail = [(e.from_status, e.to_status) for e in wiring.store().events(OWNER, env.id)]
    assert len(trail) == len(set(trail))  # no transition recorded twice


def test_replaying_a_recorded_activity_changes_nothing(engine, clock):
    env = create()
    run(engine, clock, launch(engine, operation.PROVISION, env))
    before = wiring.store().get(OWNER, env.id)
    history = history_of(engine, env.operation)
    for event in history:
        if event["EventType"] == HistoryEventType.TASK_SCHEDULED:
            engine.replay_activity(env.operation, event["EventId"])
    after = wiring.store().get(OWNER, env.id)
    assert after.etag == before.etag  # settle again was a no-op
    assert wiring.compute().creations == 1


def test_a_restart_whose_start_is_refused_stays_stopped_and_says_why(app_env, clock):
    """Between a restart's stop and its start the record is STOPPED "stopped to restart" (the
    clients wait on through it); a start refused there (the owner's quota was taken meanwhile)
    replaces that reason with why, so a wait for RUNNING ends."""
    app_env.setenv("DEV8_MAX_RUNNING_PER_USER", "1")
    wiring.reset()
    engine = engine_for(clock)
    env = create()
    run(engine, clock, launch(engine, operation.PROVISION, env))
    change = UpdateEnvironmentRequest.model_validate({"size": "medium", "restart": True})
    restarting = wiring.resizing().resize(OWNER, env.id, change).environment
    assert restarting.status is Status.STOPPING  # not running, for the quota: another may start
    other = create("meanwhile")
    run(engine, clock, launch(engine, operation.PROVISION, other))
    status = run(engine, clock, launch(engine, operation.RESTART, restarting))
    assert status.output["status"] == "STOPPED", status.output
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.STOPPED
    assert (record.status_reason or "").startswith("not started again: at most 1 "), record.status_reason
