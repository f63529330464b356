"""The timer sweeps with a fixed clock: idle auto-stop, the session limit, retention with
snapshots and restore, the reconciler; orchestrations replayed by the real SDK on the simulated
compute backend, local workspaces and Azurite."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import azure.durable_functions as df
import pytest

import orchestrators
from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import DurableEngine
from orchestrators import jobs
from shared import observability, wiring
from shared.domain import operation
from shared.domain.environment import Actor, Status
from shared.domain.lifecycle import Command
from shared.domain.operation import instance_id, orchestrator
from shared.domain.requests import CreateEnvironmentRequest, UpdateEnvironmentRequest
from shared.domain.resources import compute_name, workspace_name
from shared.errors import DomainError
from shared.services import sweeps as sweeps_module
from shared.services.ports import Change, ComputeSpec, Workspace
from shared.services.reconcile import Reconciler
from shared.services.snapshots import SnapshotService
from shared.services.sweeps import Sweeps
from shared.settings import get_settings
from tests.fakes import FixedClock

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
OWNER = "sweep-user"


class World:
    """The app's adapters with one fixed clock for the service, the sweeps and the reconciler."""

    def __init__(self, clock: FixedClock):
        self.clock = clock
        self.store = wiring.store()
        self.compute = wiring.compute()
        self.service = wiring.environments()
        self.snapshots = SnapshotService(
            self.service, self.store, self.store.snapshot_logs, wiring.agent, get_settings(), clock
        )
        self.sweeps = Sweeps(self.store, self.service, clock, wiring.policy(), index=self.store.index)
        self.reconciler = Reconciler(
            self.store,
            self.service,
            self.compute,
            clock,
            stuck_after=timedelta(minutes=30),
            orphan_grace=timedelta(minutes=30),
            index=self.store.index,
            orphans=self.store.orphans,
        )
        app = df.DFApp()
        app.register_functions(orchestrators.bp)
        self.engine = DurableEngine.from_app(app, clock=ManualClock(T0))

    def run(self, env, **extra) -> None:
        job = {**jobs.job_for(env, get_settings()), **extra}
        instance = self.engine.start(
            orchestrator(env.operation), job, instance_id=instance_id(env.operation, env.redrives)
        )
        for _ in range(100):
            self.engine.run_until_idle()
            if self.engine.status(instance).runtime_status.is_terminal:
                return
            self.engine.clock.advance_to_next_timer()
        raise AssertionError("orchestration did not finish")

    def running(self, name: str = "swept"):
        env = self.service.create(OWNER, CreateEnvironmentRequest(name=name, template="go")).environment
        self.run(env)
        env = self.service.get(OWNER, env.id)
        assert env.status is Status.RUNNING
        return env

    def stopped(self, name: str = "parked"):
        env = self.running(name)
        result = self.service.command(OWNER, env.id, Command.STOP)
        self.run(result.environment)
        return self.service.get(OWNER, env.id)

    def idle_pass(self):
        report = self.sweeps.idle()
        for result in report.accepted:
            self.run(result.environment)
        return report

    def alive(self, instance: str) -> bool:
        status = self.engine.status(instance)
        return status is not None and not status.runtime_status.is_terminal

    def reconcile(self, reconciler: Reconciler | None = None):
        report = (reconciler or self.reconciler).run(self.alive)
        for env in report.launches:
            self.run(env)
        return report

    def last_event(self, env_id: str):
        return self.store.events(OWNER, env_id, 1)[0]

    def stop_event(self, env_id: str):
        """The latest move into STOPPING (not the stop hand-off's note, which stays there)."""
        return next(
            e for e in self.store.events(OWNER, env_id) if e.to_status is Status.STOPPING is not e.from_status
        )


def stray_spec(environment_id: str) -> ComputeSpec:
    """Compute that no record of this app owns (what the reconciler must call an orphan)."""
    return ComputeSpec(
        name=compute_name(environment_id),
        environment_id=environment_id,
        owner="nobody",
        image="dev8-go",
        cpu_cores=1,
        memory_gb=2,
        ports=(),
        environment_variables={},
        workspace=Workspace("ws", "/tmp/none", 1),
        secure_environment={},
    )


@pytest.fixture
def world(app_env) -> World:
    app_env.setenv("DEV8_SIMULATED_BOOT_POLLS", "0")
    clock = FixedClock(T0)
    app_env.setattr(wiring, "utcnow", clock)  # activities settle records on the same clock
    wiring.reset()
    return World(clock)


def test_idle_environments_stop_and_active_ones_do_not(world: World):
    idle = world.running("idle")
    busy = world.running("busy")
    world.clock.advance(minutes=20)
    world.service.touch(world.service.get(OWNER, busy.id))  # the index still says T0+30 for busy
    world.clock.advance(minutes=11)

    report = world.idle_pass()
    assert report.candidates == 2  # busy is a stale candidate, confirmed and repaired
    assert [r.environment.id for r in report.accepted] == [idle.id]
    assert world.service.get(OWNER, idle.id).status is Status.STOPPED
    assert world.service.get(OWNER, busy.id).status is Status.RUNNING
    stop = world.stop_event(idle.id)
    assert (stop.actor, stop.reason) == (Actor.IDLE_SWEEP, "idle for 30 minutes")

    # The repaired index no longer offers busy until its new deadline.
    again = world.idle_pass()
    assert (again.candidates, again.accepted) == (0, [])
    world.clock.advance(minutes=20)
    assert [r.environment.id for r in world.idle_pass().accepted] == [busy.id]


def test_a_pass_in_windows_settles_each_windows_index_rows(world: World, monkeypatch):
    """Windows of two: each window's rows are written ahead, and the rows left settle while the
    next window is read; at the end the index holds exactly the truth."""
    monkeypatch.setattr(sweeps_module, "SWEEP_WINDOW", 2)
    idle = [world.running(f"idle-{n}") for n in range(2)]  # three may run at once
    busy = world.running("busy")
    world.clock.advance(minutes=20)
    world.service.touch(world.service.get(OWNER, busy.id))  # a stale candidate in the middle of a window
    world.clock.advance(minutes=11)

    report = world.sweeps.idle()
    assert sorted(r.environment.id for r in report.accepted) == sorted(env.id for env in idle)
    assert (report.candidates, report.repaired, report.skipped) == (3, 1, 0)
    running = {entry.environment_id for entry in world.store.index.candidates(Status.RUNNING)}
    stopping = {entry.environment_id for entry in world.store.index.candidates(Status.STOPPING)}
    assert running & {env.id for env in [*idle, busy]} == {busy.id}
    assert {env.id for env in idle} <= stopping and busy.id not in stopping


def test_idle_stop_at_is_exposed_and_follows_activity(world: World):
    env = world.running()
    assert env.idle_stop_at == env.last_accessed_at + timedelta(minutes=30)
    world.clock.advance(minutes=10)
    world.service.touch(world.service.get(OWNER, env.id))
    assert world.service.get(OWNER, env.id).idle_stop_at == T0 + timedelta(minutes=40)


def test_activity_is_written_at_most_once_a_minute(world: World):
    env = world.running()
    world.clock.advance(minutes=2)
    before = world.store.stats.snapshot()
    for _ in range(50):
        world.service.touch(world.service.get(OWNER, env.id))
        world.clock.advance(seconds=1)
    writes = world.store.stats.snapshot()["writes"] - before["writes"]
    assert writes == 1


def test_the_budget_pass_reads_only_owners_whose_running_environments_carry_a_claim(world: World):
    """No deployment budget here: an owner whose running environment carries no budget claim
    is not listed at all; one whose token carried a claim is, and is stopped past it."""
    claimless = world.running("claimless")
    request = CreateEnvironmentRequest(name="budgeted", template="go")
    budgeted = world.service.create("budgeted-user", request, None, 0.2).environment  # USD 0.12 an hour
    world.run(budgeted)
    assert world.service.get("budgeted-user", budgeted.id).status is Status.RUNNING
    world.clock.advance(hours=2)

    world.store.stats.reset()
    report = world.sweeps.budgets()
    assert [result.environment.id for result in report.accepted] == [budgeted.id]
    assert world.store.stats.snapshot()["queries"] == 2  # the RUNNING rows, then the one owner's records
    assert world.service.get(OWNER, claimless.id).status is Status.RUNNING


def test_the_session_limit_stops_even_an_active_environment(world: World):
    env = world.running()
    for _ in range(12 * 4):  # active every 15 minutes for 12 hours
        world.clock.advance(minutes=15)
        world.service.touch(world.service.get(OWNER, env.id))
        assert world.idle_pass().accepted == [] or world.service.get(OWNER, env.id).status is Status.STOPPED
    world.clock.advance(minutes=1)
    world.idle_pass()
    record = world.service.get(OWNER, env.id)
    assert record.status is Status.STOPPED
    stop = world.stop_event(env.id)
    assert stop.reason == "session limit of 12 hours reached"


def test_retention_snapshots_retires_and_restores(world: World):
    env = world.stopped()
    kept = world.stopped("kept")
    world.service.update(OWNER, kept.id, UpdateEnvironmentRequest(keep=True))
    workspace = Path(get_settings().local_data_dir, "workspaces", workspace_name(env.id))
    # A simulated workspace has no agent: a stand-in for its snapshot repository on the share.
    (workspace / "snapshots").mkdir()
    (workspace / "snapshots" / "config").write_text("repository")
    (workspace / "stray.txt").write_text("not in the repository")
    assert world.service.get(OWNER, env.id).delete_at(wiring.policy()) == env.stopped_at + timedelta(days=30)

    world.clock.advance(days=29)
    assert world.sweeps.retention().accepted == []
    world.clock.advance(days=2)
    report = world.sweeps.retention()
    assert [r.environment.id for r in report.accepted] == [env.id], report  # not the kept one
    world.run(report.accepted[0].environment)

    retired = world.store.get(OWNER, env.id)
    assert retired.status is Status.DELETED and retired.snapshot == "latest"  # none reported
    assert world.last_event(env.id).actor is Actor.SYSTEM
    assert [e.actor for e in world.store.events(OWNER, env.id)][:3].count(Actor.RETENTION) >= 1
    assert world.service.list(OWNER) == [world.service.get(OWNER, kept.id)]
    assert [e.id for e in world.snapshots.retired(OWNER)] == [env.id]

    restored = world.snapshots.restore_retired(OWNER, env.id).environment
    world.run(restored)
    assert world.service.get(OWNER, restored.id).status is Status.RUNNING
    restored_dir = Path(get_settings().local_data_dir, "workspaces", workspace_name(restored.id))
    assert (restored_dir / "snapshots" / "config").read_text() == "repository"
    assert not (restored_dir / "stray.txt").exists()  # the repository is the workspace's truth

    # After the restore window the retired workspace and its snapshot are purged.
    assert world.sweeps.expired_snapshots() == []
    world.clock.now = retired.restorable_until + timedelta(minutes=1)
    purges = world.sweeps.expired_snapshots()
    assert purges == [(OWNER, env.id)]
    world.engine.start(operation.PURGE, {"owner": OWNER, "environment_id": env.id}, instance_id="purge")
    world.engine.run_until_idle()
    assert not workspace.exists()
    assert world.store.get(OWNER, env.id).snapshot is None
    assert world.sweeps.expired_snapshots() == []
    assert world.snapshots.retired(OWNER) == []
    assert (restored_dir / "snapshots" / "config").exists()  # the restored environment is untouched


def test_reconciler_stops_running_records_whose_compute_is_gone(world: World):
    env = world.running()
    healthy = world.running("healthy")
    world.compute.delete(compute_name(env.id))  # removed behind Dev8's back
    report = world.reconcile()
    assert report.stopped == [env.id]
    record = world.service.get(OWNER, env.id)
    assert record.status is Status.STOPPED
    stop = world.stop_event(env.id)
    assert (stop.actor, stop.reason) == (Actor.RECONCILER, "stopped because its compute was gone")
    assert world.service.get(OWNER, healthy.id).status is Status.RUNNING
    assert not world.reconcile().changed  # a second pass changes nothing


def test_reconciler_removes_orphan_compute_after_the_grace_period(world: World):
    deleted = world.running("deleted")
    result = world.service.command(OWNER, deleted.id, Command.DELETE)
    world.run(result.environment)
    stray = "env-00000000000000aa"
    spec = stray_spec(stray)
    world.compute.create(spec)  # compute with no record at all
    # Compute left behind by a DELETED record.
    world.compute.create(replace(spec, name=compute_name(deleted.id), environment_id=deleted.id))
    keeper = world.running("keeper")

    first = world.reconcile()
    assert sorted(first.orphans_waiting) == sorted([compute_name(stray), compute_name(deleted.id)])
    assert first.orphans_removed == []
    world.clock.advance(minutes=31)
    second = world.reconcile()
    assert sorted(second.orphans_removed) == sorted([compute_name(stray), compute_name(deleted.id)])
    names = {status.name for status in world.compute.list()}
    assert names == {compute_name(keeper.id)}
    assert not world.reconcile().changed
    assert world.store.index.owner_of(keeper.id) == OWNER
    # Workspaces are never touched by the reconciler.
    assert wiring.workspaces().exists(workspace_name(keeper.id))


def test_reconciler_redrives_a_stuck_operation_once_then_fails_it(world: World):
    env = world.running()
    stuck = world.service.command(OWNER, env.id, Command.STOP).environment  # orchestration never started
    world.clock.advance(minutes=10)
    assert world.reconcile().redriven == []  # not stuck yet
    world.clock.advance(minutes=30)
    report = world.reconcile()
    assert report.redriven == [env.id]
    assert world.service.get(OWNER, env.id).status is Status.STOPPED  # the re-drive finished it

    again = world.running("again")
    stuck = world.service.command(OWNER, again.id, Command.STOP).environment
    redriven = stuck.model_copy(update={"redrives": 1})
    world.store.save(
        world.store.get(OWNER, again.id),
        redriven,
        Change(Actor.RECONCILER, "re-driving", world.clock()),
    )
    world.clock.advance(minutes=40)
    report = world.reconciler.run(lambda instance: False)
    assert report.failed == [again.id]
    record = world.service.get(OWNER, again.id)
    assert record.status is Status.ERROR and "interrupted" in record.status_reason
    assert not world.reconciler.run(lambda instance: False).changed


def test_racing_stop_sweep_and_delete_make_one_transition(world: World):
    for attempt in range(5):
        env = world.running(f"race{attempt}")
        world.clock.advance(minutes=31)

        def user_stop(env_id: str = env.id):
            return world.service.command(OWNER, env_id, Command.STOP)

        def user_delete(env_id: str = env.id):
            return world.service.command(OWNER, env_id, Command.DELETE)

        def sweep():
            return world.sweeps.idle()

        outcomes = []
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(call) for call in (user_stop, sweep, user_delete)]
            for future in futures:
                try:
                    outcomes.append(future.result())
                except DomainError as error:
                    outcomes.append(type(error).__name__)
        record = world.store.get(OWNER, env.id)
        assert record.status in (Status.STOPPING, Status.DELETING)
        left = [e for e in world.store.events(OWNER, env.id) if e.from_status is Status.RUNNING]
        assert len(left) == 1  # exactly one transition out of RUNNING
        if record.status is Status.DELETING:
            world.run(record)
            assert world.store.get(OWNER, env.id).status is Status.DELETED
            # Nothing brings a DELETED environment back.
            world.clock.advance(minutes=60)
            world.idle_pass()
            world.reconcile()
            assert world.store.get(OWNER, env.id).status is Status.DELETED
        else:
            world.run(record)


def test_reconciler_stops_compute_left_billing_under_an_error_record(world: World):
    env = world.running()
    world.compute.fail_next("stop", permanent=True, message="stop refused", times=1)
    result = world.service.command(OWNER, env.id, Command.STOP)
    world.run(result.environment)
    record = world.service.get(OWNER, env.id)
    assert record.status is Status.ERROR and "stop refused" in record.status_reason
    assert world.compute.status(compute_name(env.id)).state.value == "running"  # still billing

    assert world.reconcile().error_compute_stopped == []  # not before the grace period
    world.clock.advance(minutes=31)
    assert world.reconcile().error_compute_stopped == [env.id]
    assert world.compute.status(compute_name(env.id)).state.value == "stopped"
    assert world.service.get(OWNER, env.id).status is Status.ERROR  # the record says what happened
    assert wiring.workspaces().exists(workspace_name(env.id))
    assert not world.reconcile().changed
    result = world.service.command(OWNER, env.id, Command.START)  # the user's retry still works
    world.run(result.environment)
    assert world.service.get(OWNER, env.id).status is Status.RUNNING


def test_the_orphan_grace_period_survives_fresh_instances(world: World):
    """On Flex Consumption each timer run may land on a new instance: the first sighting is kept
    in Table Storage, so three passes on three fresh reconcilers still remove the orphan."""
    from shared.adapters.tables.records import TableEnvironmentStore

    stray = "env-00000000000000bb"
    world.compute.create(stray_spec(stray))

    def fresh_pass():
        store = TableEnvironmentStore.from_settings(get_settings())  # a new instance's own clients
        reconciler = Reconciler(
            store,
            world.service,
            world.compute,
            world.clock,
            stuck_after=timedelta(minutes=30),
            orphan_grace=timedelta(minutes=30),
            index=store.index,
            orphans=store.orphans,
        )
        return world.reconcile(reconciler)

    assert fresh_pass().orphans_waiting == [compute_name(stray)]
    world.clock.advance(minutes=20)
    assert fresh_pass().orphans_waiting == [compute_name(stray)]  # 20 of 30 minutes: still waiting
    world.clock.advance(minutes=11)
    assert fresh_pass().orphans_removed == [compute_name(stray)]  # 31 minutes after the first sighting
    assert compute_name(stray) not in {status.name for status in world.compute.list()}
    assert fresh_pass().orphans_waiting == []  # and the ledger forgot it


def test_the_retention_timer_asks_due_workspaces_to_prune_once_a_day(world: World):
    from shared import agent_tokens
    from shared.domain.snapshots import SnapshotReport
    from tests.fakes import ScriptedAgent

    agent = ScriptedAgent()
    snapshots = SnapshotService(
        world.service, world.store, world.store.snapshot_logs, lambda: agent, get_settings(), world.clock
    )
    busy, parked, fresh = world.running("busy"), world.stopped("parked"), world.running("fresh")

    def report(env, event=None):
        token = world.service.secure_environment(env)[agent_tokens.AGENT_TOKEN_VARIABLE]
        listed = [{"short_id": "aaaaaaaa", "time": T0.isoformat(), "tags": ["reason:interval"]}]
        body = SnapshotReport.model_validate({"event": event, "snapshots": listed})
        snapshots.report(world.service.agent_environment(token, env.id), body)

    report(busy)
    report(parked)  # `fresh` has no snapshot yet: nothing to prune
    assert snapshots.prune_pass(world.store.index) == 2
    assert set(agent.asked) == {(busy.id, "prune"), (parked.id, "prune")}
    assert set(agent.asked.values()) == {"prune"}
    report(busy, {"event": "pruned"})  # the running one did it at once; the parked one waits
    agent.asked.clear()
    world.clock.advance(hours=1)
    assert snapshots.prune_pass(world.store.index) == 1 and set(agent.asked) == {(parked.id, "prune")}
    world.clock.advance(hours=get_settings().snapshot_prune_hours)
    agent.asked.clear()
    assert snapshots.prune_pass(world.store.index) == 2  # a day later: due again
    assert fresh.id not in {env_id for env_id, _ in agent.asked}
    # Two days after its stop, the parked workspace's request has waited through two passes: its
    # log is no longer read (its repository cannot change until it starts); one stopped since is.
    world.clock.advance(hours=get_settings().snapshot_prune_hours)
    lately = world.stopped("lately")
    report(lately)
    agent.asked.clear()
    world.store.stats.reset()
    assert snapshots.prune_pass(world.store.index) == 2
    assert set(agent.asked) == {(busy.id, "prune"), (lately.id, "prune")}
    assert world.store.stats.snapshot()["point_reads"] == 3  # busy's, fresh's and lately's logs


def test_a_passes_workers_send_its_id_with_every_table_call(world: World, monkeypatch):
    """A pass binds an id of its own (timers/sweeps.py); its pool's worker threads bind it too,
    so their log lines and table calls (x-ms-client-request-id) carry it."""
    idle = world.running("idle")
    world.clock.advance(minutes=31)
    asked: list[tuple[str, str | None]] = []
    read_field = observability.current

    def watched(name: str) -> str | None:
        value = read_field(name)
        if name == "request_id":
            asked.append((threading.current_thread().name, value))
        return value

    monkeypatch.setattr(observability, "current", watched)
    with observability.bound(request_id="idle-sweep-test"):
        report = world.sweeps.idle()
    assert [r.environment.id for r in report.accepted] == [idle.id]
    on_workers = {value for thread, value in asked if thread.startswith("sweep")}
    assert on_workers == {"idle-sweep-test"}
