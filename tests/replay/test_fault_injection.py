"""Fault injection: 500+ lifecycle operations on a compute backend that fails 30% of its calls
before acting and loses the answer of 30% of those that acted.

Owners create, start, stop and delete environments at random (seeded), and poke environments that
are mid-operation (which must answer 409), while the real lifecycle orchestrations run on devhost's
DurableEngine with a manual clock; `call_activity_with_retry` retries the transient failures and
some operations end in ERROR once retries are exhausted. A few orchestration starts are lost as
well (a host dying between the record write and start_new). Then the network recovers, some drift
is planted (computes removed behind Dev8's back, computes with no live record), the clock passes
the stuck deadline and ONE reconcile pass runs, its launches carried out. Afterwards:

- no lost record: every created environment has its record, in the status its last operation
  settled it in, and nothing is left transitional;
- no duplicate compute: one compute per environment under its deterministic name, and no
  provision/start run brought more than one compute into existence;
- no orphan: every compute belongs to a live record (and no STOPPED record keeps one running);
- the status index, the id -> owner directory and the usage counters agree with the records;
- a second reconcile pass changes nothing.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import pytest
from azure.data.tables import TableServiceClient

import orchestrators
from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import DurableEngine, RuntimeStatus
from orchestrators import jobs
from shared import wiring
from shared.adapters.compute.simulated import SimulatedCompute
from shared.adapters.tables.rows import owner_key
from shared.domain import operation
from shared.domain.environment import Environment, Status
from shared.domain.lifecycle import ACTIVE, TRANSITIONAL, Command
from shared.domain.operation import instance_id, orchestrator
from shared.domain.quota import Usage
from shared.domain.requests import CreateEnvironmentRequest
from shared.domain.resources import ComputeState, compute_name
from shared.errors import DomainError, InvalidState
from shared.services import planning as service_module
from shared.services.ports import ComputeSpec, ComputeStatus, Workspace
from shared.services.reconcile import Reconciler, ReconcileReport
from shared.settings import get_settings

# Deterministic; set CHAOS_SEED to explore other interleavings.
SEED = int(os.environ.get("CHAOS_SEED", "20261121"))
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
OWNERS = tuple(f"chaos-{number:02d}" for number in range(12))
OPERATIONS = 500  # accepted lifecycle operations (creates, starts, stops, deletes)
ERROR_RATE = 0.3
LOST_RESPONSE_RATE = 0.3
LOST_LAUNCH_RATE = 0.04
STUCK_AFTER = timedelta(minutes=30)
TEMPLATES = ("node", "python", "go", "fullstack")
# What a user asks for, and which statuses make it a command the API accepts.
ACTIONS = ("create", "start", "stop", "delete", "poke")
WEIGHTS = (3, 2, 3, 2, 1)
ACCEPTING = {
    Command.START: {Status.STOPPED, Status.ERROR},
    Command.STOP: {Status.RUNNING},
    Command.DELETE: {Status.RUNNING, Status.STOPPED, Status.ERROR},
}


class CountingCompute(SimulatedCompute):
    """Remembers which environment each compute resource was brought into existence for.

    The engine runs activities inline and one at a time, so comparing the creation counter
    around each call is exact."""

    def __init__(self, **options: float | int | None) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.created_for: Counter[str] = Counter()

    def create(self, spec: ComputeSpec) -> ComputeStatus:
        return self._counting(spec, super().create)

    def start(self, spec: ComputeSpec) -> ComputeStatus:
        return self._counting(spec, super().start)

    def _counting(self, spec: ComputeSpec, call: Callable[[ComputeSpec], ComputeStatus]) -> ComputeStatus:
        before = self.creations
        try:
            return call(spec)
        finally:
            if self.creations > before:
                self.created_for[spec.environment_id] += self.creations - before


@dataclass(frozen=True)
class Glimpse:
    id: str
    status: Status
    version: int


@dataclass
class Tracked:
    owner: str
    operations: list[str] = field(default_factory=list)  # accepted operation ids, oldest first
    bring_ups: int = 0  # provision/start orchestrations launched (each may create one compute)


class Chaos:
    """The app's adapters on one manual clock, a faulty compute backend, and a seeded crowd."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.clock = ManualClock(T0)
        monkeypatch.setattr(wiring, "utcnow", self.clock.now)
        self.compute = CountingCompute(
            error_rate=ERROR_RATE, lost_response_rate=LOST_RESPONSE_RATE, boot_polls=0, seed=SEED
        )
        monkeypatch.setattr(wiring, "compute", functools.lru_cache(maxsize=1)(lambda: self.compute))
        numbers = itertools.count(1)  # sequential ids: the run does not depend on random ids
        monkeypatch.setattr(service_module, "new_id", lambda: f"env-{next(numbers):016x}")
        self.store = wiring.store()
        settings = get_settings()
        assert settings.tables_connection is not None
        self._records = TableServiceClient.from_connection_string(
            settings.tables_connection.get_secret_value()
        ).get_table_client(f"{settings.table_prefix}Environments")
        self.service = wiring.environments()
        app = df.DFApp()
        app.register_functions(orchestrators.bp)
        self.engine = DurableEngine.from_app(app, clock=self.clock)
        self.random = random.Random(SEED)
        self.tracked: dict[str, Tracked] = {}  # creation order
        self.accepted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.lost_launches: set[str] = set()
        self.planted: Counter[str] = Counter()  # computes the test itself made (drift)

    # --- users ------------------------------------------------------------------------------------

    def act(self) -> None:
        """One user request, chosen at random among what this owner's environments allow."""
        owner = self.random.choice(OWNERS)
        action = self.random.choices(ACTIONS, WEIGHTS)[0]
        if action == "create":
            request = CreateEnvironmentRequest(
                name=f"chaos-{len(self.tracked)}", template=self.random.choice(TEMPLATES)
            )
            try:
                env = self.service.create(owner, request).environment
            except DomainError as error:  # quota
                self.refused[f"create:{type(error).__name__}"] += 1
                return
            self.tracked[env.id] = Tracked(owner)
            self._accepted("create", env)
            return
        mine = self.live(owner)
        if action == "poke":  # a command while an operation is in flight: 409, nothing moves
            busy = [glimpse for glimpse in mine if glimpse.status in TRANSITIONAL]
            if not busy:
                return
            chosen = self.random.choice(busy)
            command = self.random.choice(list(Command))
            with pytest.raises(InvalidState):
                self.service.command(owner, chosen.id, command)
            assert self.store.get(owner, chosen.id).version == chosen.version  # type: ignore[union-attr]
            self.refused["poke:INVALID_STATE"] += 1
            return
        command = Command(action)
        eligible = [glimpse for glimpse in mine if glimpse.status in ACCEPTING[command]]
        if not eligible:
            return
        chosen = self.random.choice(eligible)
        try:
            result = self.service.command(owner, chosen.id, command)
        except DomainError as error:  # quota on start
            self.refused[f"{action}:{type(error).__name__}"] += 1
            return
        assert result.accepted, (action, chosen.status)
        self._accepted(action, result.environment)

    def live(self, owner: str) -> list[Glimpse]:
        """The owner's live records as stored, oldest first: one query reading three columns
        (what `store.list` reads, minus parsing every column of every row ever created)."""
        rows = self._records.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high and status ne @deleted",
            parameters={
                "pk": owner_key(owner),
                "low": "env:",
                "high": "env;",
                "deleted": Status.DELETED.value,
            },
            select=["environment_id", "status", "version"],
        )
        found = [Glimpse(str(r["environment_id"]), Status(r["status"]), int(r["version"])) for r in rows]
        return sorted(found, key=lambda glimpse: glimpse.id)  # ids are sequential: creation order

    def _accepted(self, action: str, env: Environment) -> None:
        self.accepted[action] += 1
        assert env.operation is not None
        self.tracked[env.id].operations.append(env.operation)
        if self.random.random() < LOST_LAUNCH_RATE:
            self.lost_launches.add(env.id)  # the record moved, its orchestration never started
        else:
            self.launch(env)

    # --- the host ---------------------------------------------------------------------------------

    def launch(self, env: Environment) -> None:
        if orchestrator(env.operation) in (operation.PROVISION, operation.START):
            self.tracked[env.id].bring_ups += 1
        self.engine.start(
            orchestrator(env.operation),
            jobs.job_for(env, get_settings()),
            instance_id=instance_id(env.operation, env.redrives),
        )

    def step(self) -> None:
        self.engine.run_until_idle()
        self.clock.advance_to_next_timer()

    def drain(self) -> None:
        for _ in range(100_000):
            self.engine.run_until_idle()
            if self.clock.advance_to_next_timer() is None:
                return
        raise AssertionError("orchestrations kept scheduling timers")

    def alive(self, instance: str) -> bool:
        status = self.engine.status(instance)
        return status is not None and not status.runtime_status.is_terminal

    def reconcile(self, reconciler: Reconciler) -> ReconcileReport:
        report = reconciler.run(self.alive)
        for env in report.launches:
            assert env.operation is not None
            if env.operation not in self.tracked[env.id].operations:
                self.tracked[env.id].operations.append(env.operation)
            self.launch(env)
        self.drain()
        return report

    # --- planted drift ----------------------------------------------------------------------------

    def plant_compute(self, environment_id: str) -> str:
        spec = ComputeSpec(
            name=compute_name(environment_id),
            environment_id=environment_id,
            owner="nobody",
            image="dev8-node",
            cpu_cores=1,
            memory_gb=2,
            ports=(),
            environment_variables={},
            workspace=Workspace("ws", "/nowhere", 1),
            secure_environment={},
        )
        self.planted[environment_id] += 1
        return self.compute.create(spec).name

    def records(self) -> dict[str, Environment]:
        found = {}
        for environment_id, tracked in self.tracked.items():
            record = self.store.get(tracked.owner, environment_id)
            assert record is not None, f"lost record: {environment_id}"
            found[environment_id] = record
        return found


@pytest.fixture
def chaos(app_env: pytest.MonkeyPatch) -> Chaos:
    return Chaos(app_env)


def test_faults_over_500_operations_leave_no_lost_record_duplicate_or_orphan(chaos: Chaos) -> None:
    # 1. The crowd, with the faulty backend.
    for _ in range(20_000):
        if sum(chaos.accepted.values()) >= OPERATIONS:
            break
        for _ in range(chaos.random.randint(1, 3)):
            chaos.act()
        chaos.step()
    chaos.drain()
    assert sum(chaos.accepted.values()) >= OPERATIONS
    assert min(chaos.accepted[action] for action in ("create", "start", "stop", "delete")) >= 50
    assert chaos.refused["poke:INVALID_STATE"] > 0
    outcomes = Counter(
        str(status.output["status"])
        for status in chaos.engine.list_instances()
        if status.runtime_status is RuntimeStatus.COMPLETED
    )
    assert outcomes["ERROR"] > 0, "the faults never exhausted a retry: the test proves nothing"
    assert not [s for s in chaos.engine.list_instances() if s.runtime_status is not RuntimeStatus.COMPLETED]

    # 2. The network recovers; drift appears; time passes the stuck deadline.
    chaos.compute.set_fault_rates(error_rate=0.0, lost_response_rate=0.0)
    before = chaos.records()
    running = [env for env in before.values() if env.status is Status.RUNNING]
    deleted = [env for env in before.values() if env.status is Status.DELETED]
    assert len(running) >= 3 and deleted
    vanished = {env.id for env in running[:3]}
    for environment_id in vanished:
        chaos.compute.delete(compute_name(environment_id))
    strays = {chaos.plant_compute(f"env-{0xFFFF0000 + n:016x}") for n in range(3)}
    strays.add(chaos.plant_compute(deleted[0].id))  # left behind by a DELETED record
    stuck = {env.id for env in before.values() if env.status in TRANSITIONAL}
    assert stuck == chaos.lost_launches, "only the lost launches may still be mid-operation"
    chaos.clock.advance(STUCK_AFTER + timedelta(minutes=1))

    # 3. One reconcile pass (orphans removed at once), its stops and re-drives carried out.
    reconciler = Reconciler(
        chaos.store,
        chaos.service,
        chaos.compute,
        chaos.clock.now,
        stuck_after=STUCK_AFTER,
        orphan_grace=timedelta(0),
        index=chaos.store.index,
        orphans=chaos.store.orphans,
    )
    report = chaos.reconcile(reconciler)
    assert set(report.orphans_removed) == strays
    assert set(report.stopped) == vanished
    assert set(report.redriven) == stuck
    assert report.failed == []

    records = chaos.records()

    # 0 lost records: each one settled by its last operation, none left mid-operation.
    for environment_id, record in records.items():
        tracked = chaos.tracked[environment_id]
        assert record.status not in TRANSITIONAL, (environment_id, record.status)
        assert record.operation == tracked.operations[-1]
        finished = chaos.engine.status(instance_id(record.operation, record.redrives))
        assert finished is not None and finished.runtime_status is RuntimeStatus.COMPLETED
        assert finished.output["status"] == record.status.value, (environment_id, finished.output)
        assert chaos.store.events(tracked.owner, environment_id, 1)[0].to_status is record.status

    # 0 duplicates: one compute per environment, under its own name, at most one per bring-up.
    computes = chaos.compute.list()
    per_environment = Counter(status.environment_id for status in computes)
    assert max(per_environment.values()) == 1
    assert all(status.name == compute_name(status.environment_id or "") for status in computes)
    assert sum(chaos.compute.created_for.values()) == chaos.compute.creations
    for environment_id, tracked in chaos.tracked.items():
        made = chaos.compute.created_for[environment_id] - chaos.planted[environment_id]
        assert made <= tracked.bring_ups, environment_id

    # 0 orphans: every compute belongs to a live record; RUNNING and STOPPED records match it.
    by_id = {status.environment_id: status for status in computes}
    for status in computes:
        holder = records.get(status.environment_id or "")
        assert holder is not None and holder.status is not Status.DELETED, status.name
    for record in records.values():
        state = by_id[record.id].state if record.id in by_id else ComputeState.ABSENT
        if record.status is Status.RUNNING:
            assert state is ComputeState.RUNNING, record.id
        if record.status is Status.STOPPED:
            assert state in (ComputeState.STOPPED, ComputeState.ABSENT), record.id

    # The status index: every live record under its status; stale rows only until repaired.
    live = {(record.status, record.id) for record in records.values() if record.status is not Status.DELETED}
    entries = [entry for status in Status for entry in chaos.store.index.candidates(status)]
    assert live <= {(entry.status, entry.environment_id) for entry in entries}
    stale = [entry for entry in entries if (entry.status, entry.environment_id) not in live]
    for entry in entries:
        if entry.status is Status.RUNNING:  # never later than the record: no hidden idle candidate
            truth = records[entry.environment_id].idle_stop_at
            assert truth is None or entry.idle_stop_at is None or entry.idle_stop_at <= truth
    for entry in stale:
        chaos.store.index.repair_index(entry)
    indexed = {
        (entry.status, entry.environment_id)
        for status in Status
        for entry in chaos.store.index.candidates(status)
    }
    assert indexed == live
    for environment_id, tracked in chaos.tracked.items():
        assert chaos.store.index.owner_of(environment_id) == tracked.owner

    # Usage counters agree with the records (quota stays exact through the chaos).
    for owner in OWNERS:
        mine = [record for record in records.values() if record.owner == owner]
        expected = Usage(
            environments=sum(record.status is not Status.DELETED for record in mine),
            active=sum(record.status in ACTIVE for record in mine),
        )
        assert chaos.store.usage(owner) == expected, owner

    # A second pass right after changes nothing.
    again = chaos.reconcile(reconciler)
    assert not again.changed, again

    error_held = Counter(
        status.state.value
        for status in computes
        if records[status.environment_id or ""].status is Status.ERROR
    )
    print(
        f"\nfault injection (seed {SEED}): accepted {dict(chaos.accepted)}, refused {dict(chaos.refused)}, "
        f"outcomes {dict(outcomes)}, lost launches {len(chaos.lost_launches)}, "
        f"computes created {chaos.compute.creations}, left {len(computes)} "
        f"(held by ERROR records: {dict(error_held)}); stale index rows {len(stale)}; "
        f"reconcile: {len(report.orphans_removed)} orphans removed, {len(report.stopped)} stopped, "
        f"{len(report.redriven)} re-driven"
    )


def test_a_failing_compute_call_does_not_end_the_reconcile_pass(chaos: Chaos) -> None:
    """One orphan whose delete keeps failing (or one status call that fails) must not keep the
    rest of the pass from running: a poison orphan would otherwise block every later pass."""
    chaos.compute.set_fault_rates(error_rate=0.0, lost_response_rate=0.0)
    owner = OWNERS[0]
    running = []
    for name in ("vanished", "booting", "healthy"):
        env = chaos.service.create(owner, CreateEnvironmentRequest(name=name, template="go")).environment
        chaos.tracked[env.id] = Tracked(owner)
        chaos.launch(env)
        chaos.drain()
        record = chaos.store.get(owner, env.id)
        assert record is not None and record.status is Status.RUNNING
        running.append(record)
    vanished, booting, healthy = (env.id for env in running)
    chaos.compute.delete(compute_name(vanished))
    spec = chaos.compute.spec_of(compute_name(booting))
    assert spec is not None
    chaos.compute.stop(spec.name)
    chaos.compute.start(spec)  # PENDING: the reconciler asks for its live state
    orphan = chaos.plant_compute(f"env-{0xFFFF0000:016x}")
    reconciler = Reconciler(
        chaos.store,
        chaos.service,
        chaos.compute,
        chaos.clock.now,
        stuck_after=STUCK_AFTER,
        orphan_grace=timedelta(0),
        index=chaos.store.index,
        orphans=chaos.store.orphans,
    )

    chaos.compute.fail_next("delete", permanent=True, message="the group is locked")
    chaos.compute.fail_next("status", permanent=False, message="throttled")
    first = chaos.reconcile(reconciler)
    assert first.orphans_removed == [] and first.orphans_waiting == [orphan]
    assert first.stopped == [vanished]  # the rest of the pass still ran
    assert chaos.store.get(owner, vanished).status is Status.STOPPED  # type: ignore[union-attr]
    assert chaos.store.get(owner, booting).status is Status.RUNNING  # type: ignore[union-attr]

    second = chaos.reconcile(reconciler)
    assert second.orphans_removed == [orphan] and second.stopped == []
    assert {status.environment_id for status in chaos.compute.list()} == {booting, healthy}
    assert not chaos.reconcile(reconciler).changed
