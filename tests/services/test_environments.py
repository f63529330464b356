"""EnvironmentService over the in-memory records fake (tests/fakes.py): create, commands, settle,
quotas, idempotency and races in milliseconds. tests/contract proves the Table Storage adapter keeps
the same contract on Azurite."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.environment import Actor, CloudProvider, Status
from shared.domain.lifecycle import Command
from shared.domain.operation import Kind
from shared.domain.placement import Placement
from shared.domain.progress import Phase
from shared.domain.requests import CreateEnvironmentRequest, UpdateEnvironmentRequest
from shared.errors import Conflict, InvalidState, NotFound, QuotaExceeded, ValidationFailed
from shared.secrets import PASSWORD_KEY, SNAPSHOT_PASSWORD_KEY
from shared.services.environments import EnvironmentService
from shared.services.ports import Change, IdempotencyRecord
from shared.services.snapshots import SnapshotService
from shared.settings import Settings
from tests.fakes import FixedClock, InMemoryRecords, InMemorySnapshotLogs, ScriptedAgent

KEY = base64.b64encode(b"s" * 32).decode()
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def store() -> InMemoryRecords:
    return InMemoryRecords()


def make_settings(**limits) -> Settings:
    return Settings(
        jwt_secret="j" * 32,
        tables_connection="UseDevelopmentStorage=true",
        secrets_key=KEY,
        **limits,
    )


def make_service(store, clock=None, **limits) -> EnvironmentService:
    return EnvironmentService(
        store, make_settings(**limits), clock or FixedClock(T0), Placement(CloudProvider.LOCAL, "local-test")
    )


def snapshot_service(service, store, clock=None, agent=None, logs=None) -> SnapshotService:
    return SnapshotService(
        service,
        store,
        logs if logs is not None else InMemorySnapshotLogs(),
        lambda: agent if agent is not None else ScriptedAgent(),
        make_settings(),
        clock or FixedClock(T0),
    )


def request(**fields) -> CreateEnvironmentRequest:
    return CreateEnvironmentRequest.model_validate({"name": "api", "template": "python", **fields})


def run(service: EnvironmentService, owner: str, env_id: str, status: Status) -> None:
    """Finish whatever operation the record is waiting on, as its orchestration would."""
    env = service.get(owner, env_id)
    service.settle(owner, env_id, env.operation, status is not Status.ERROR, status.value.lower())


def test_create_defaults_and_placement(store):
    service = make_service(store)
    env = service.create("alice", request(size="small")).environment
    assert env.status is Status.CREATING and env.owner == "alice"
    assert (env.cpu_cores, env.memory_gb, env.storage_gb, env.size) == (1, 2, 20, "small")
    assert env.ports == [8000, 8888] and env.idle_timeout_minutes == 30
    assert env.cloud_provider is CloudProvider.LOCAL and env.cloud_region == "local-test"
    assert service.get("alice", env.id).id == env.id
    assert [e.to_status for e in service.events("alice", env.id)] == [Status.CREATING]


def test_custom_resources_within_bounds(store):
    service = make_service(store, max_cpu_cores=4)
    env = service.create("bob", request(cpu_cores=3, memory_gb=6)).environment
    assert (env.size, env.cpu_cores, env.memory_gb, env.storage_gb) == ("custom", 3, 6, 50)
    with pytest.raises(ValidationFailed) as refused:
        service.create("bob", request(cpu_cores=5))
    assert refused.value.details == [{"field": "cpu_cores", "message": "must be between 0.5 and 4.0"}]
    assert service.list("bob") == [service.get("bob", env.id)]  # the refused request changed nothing


def test_another_owner_sees_nothing(store):
    service = make_service(store)
    env = service.create("alice", request()).environment
    for call in (
        lambda: service.get("mallory", env.id),
        lambda: service.command("mallory", env.id, Command.STOP),
        lambda: service.update("mallory", env.id, UpdateEnvironmentRequest(name="x")),
        lambda: service.connection("mallory", env.id),
        lambda: service.events("mallory", env.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert service.list("mallory") == []


def test_full_lifecycle_and_audit_trail(store):
    clock = FixedClock(T0)
    service = make_service(store, clock)
    env = service.create("carol", request()).environment
    run(service, "carol", env.id, Status.RUNNING)
    assert service.command("carol", env.id, Command.START).accepted is False  # already running: 200
    stopping = service.command("carol", env.id, Command.STOP)
    assert stopping.accepted and stopping.environment.status is Status.STOPPING
    with pytest.raises(InvalidState):
        service.command("carol", env.id, Command.DELETE)  # busy
    clock.now += timedelta(minutes=5)
    run(service, "carol", env.id, Status.STOPPED)
    stopped = service.get("carol", env.id)
    assert stopped.stopped_at == clock.now
    deleting = service.command("carol", env.id, Command.DELETE)
    assert deleting.accepted
    run(service, "carol", env.id, Status.DELETED)
    with pytest.raises(NotFound):
        service.get("carol", env.id)
    assert service.list("carol") == []
    trail = store.events("carol", env.id)
    assert [(e.from_status, e.to_status) for e in trail] == [
        (Status.DELETING, Status.DELETED),
        (Status.STOPPED, Status.DELETING),
        (Status.STOPPING, Status.STOPPED),
        (Status.RUNNING, Status.STOPPING),
        (Status.CREATING, Status.RUNNING),
        (None, Status.CREATING),
    ]
    assert {e.actor for e in trail} == {Actor.USER, Actor.SYSTEM}


def test_settle_is_idempotent_and_ignores_stale_operations(store):
    service = make_service(store)
    env = service.create("dave", request()).environment
    first = service.settle("dave", env.id, env.operation, True, "running", vs_code_url="http://x")
    again = service.settle("dave", env.id, env.operation, True, "running", vs_code_url="http://x")
    assert first.status is Status.RUNNING
    assert first.version == again.version  # the second call wrote nothing
    stale = service.settle("dave", env.id, "some-older-operation", False, "late failure")
    assert stale.status is Status.RUNNING


def test_reach_and_settle_decide_on_the_callers_record_and_on_a_fresh_one_when_it_is_stale(store):
    """An activity hands on the record it read or wrote (no second read); one someone wrote since
    is refused by its version, read again, and the step lands on the fresh record."""
    service = make_service(store)
    env = service.create("hana", request()).environment
    reached = service.reach("hana", env.id, env.operation, Phase.WORKSPACE, current=env)
    assert reached is not None and [step.phase for step in reached.progress] == [Phase.WORKSPACE]
    service.audit("hana", env.id, Change(Actor.USER, "renamed", T0), name="renamed")  # a write meanwhile
    again = service.reach("hana", env.id, env.operation, Phase.COMPUTE_REQUESTED, current=reached)
    assert again is not None and again.name == "renamed"  # decided on the fresh record, not the stale one
    assert [step.phase for step in again.progress] == [Phase.WORKSPACE, Phase.COMPUTE_REQUESTED]
    settled = service.settle("hana", env.id, env.operation, True, "running", current=reached)
    assert settled is not None and settled.status is Status.RUNNING and settled.name == "renamed"
    assert [step.phase for step in settled.progress] == [Phase.WORKSPACE, Phase.COMPUTE_REQUESTED]
    deleting = service.command("hana", env.id, Command.DELETE).environment
    # Settled: no longer that operation's to tell, on the stale record as on the fresh one.
    service.reach("hana", env.id, env.operation, Phase.IDE_ANSWERING, current=settled)
    service.reach("hana", env.id, env.operation, Phase.IDE_ANSWERING)
    assert store.get("hana", env.id).version == deleting.version  # nothing written
    service.settle("hana", env.id, deleting.operation, True, "deleted")
    assert service.reach("hana", env.id, env.operation, Phase.IDE_ANSWERING) is None  # gone: nothing to tell


def test_reach_and_settle_recall_the_record_their_process_wrote_and_read_afresh_when_it_is_stale(
    store, monkeypatch
):
    """Without a record from the caller, reach and settle decide on the record as their process
    last wrote it for the same operation (services/written.py), without a read. Another worker's
    write since is caught by the version check and the step lands on the fresh record; a recalled
    record that calls for no write is decided on again from a fresh read."""
    reads = []
    monkeypatch.setattr(
        store, "get", lambda owner, env_id, read=store.get: reads.append(env_id) or read(owner, env_id)
    )
    here, there = make_service(store), make_service(store)  # two workers, one store
    env = here.create("ines", request()).environment
    op = env.operation
    workspace = here.reach("ines", env.id, op, Phase.WORKSPACE)
    assert workspace is not None and reads == []  # decided on the record the create wrote
    there.reach("ines", env.id, op, Phase.COMPUTE_REQUESTED)  # a worker that never wrote it reads it
    assert len(reads) == 1
    pulling = here.reach("ines", env.id, op, Phase.IMAGE_PULLING)  # recalls the stale record
    assert len(reads) == 2  # refused by its version, read again
    assert pulling is not None
    assert [step.phase for step in pulling.progress] == [
        Phase.WORKSPACE,
        Phase.COMPUTE_REQUESTED,
        Phase.IMAGE_PULLING,
    ]
    there.settle("ines", env.id, op, True, "running")
    stopping = there.command("ines", env.id, Command.STOP).environment  # a newer operation, there
    # Recalled, the phase is reached already (no write): decided again on the fresh record.
    again = here.reach("ines", env.id, op, Phase.IMAGE_PULLING)
    assert again is not None and again.status is Status.STOPPING and again.operation == stopping.operation
    settled = here.settle("ines", env.id, op, True, "running")  # recalled, refused, read: not its own
    assert settled is not None and settled.status is Status.STOPPING
    assert store.get("ines", env.id).version == stopping.version  # nothing written by the stale steps
    assert here.written("ines", env.id, stopping.operation) is None  # written by another worker


def test_settle_notes_the_last_phase_reached_in_its_own_write(store):
    """The poll that finds the compute running leaves its phase to the settle: one write, with
    the phase begun when it was seen; a phase the record already has keeps its own time."""
    clock = FixedClock(T0)
    service = make_service(store, clock=clock)
    env = service.create("ines", request()).environment
    service.reach("ines", env.id, env.operation, Phase.CONTAINER_STARTED)
    seen = T0 + timedelta(seconds=2)
    clock.advance(seconds=3)
    before = store.get("ines", env.id).version
    reached = (Phase.IDE_ANSWERING, seen)
    settled = service.settle("ines", env.id, env.operation, True, "running", reached=reached)
    assert settled is not None and settled.version == before + 1
    assert [(step.phase, step.started_at, step.ended_at) for step in settled.progress[-2:]] == [
        (Phase.CONTAINER_STARTED, T0, seen),
        (Phase.IDE_ANSWERING, seen, clock.now),
    ]
    assert "container started 2.0 s, IDE answering 1.0 s" in service.events("ines", env.id)[0].reason

    other = service.create("ines", request()).environment
    service.reach("ines", other.id, other.operation, Phase.IDE_ANSWERING)  # written by an earlier poll
    clock.advance(seconds=5)
    again = service.settle(
        "ines", other.id, other.operation, True, "running", reached=(Phase.IDE_ANSWERING, seen)
    )
    assert again is not None
    assert [(step.phase, step.started_at) for step in again.progress] == [
        (Phase.IDE_ANSWERING, T0 + timedelta(seconds=3))
    ]


def test_only_a_create_or_start_settles_with_its_phase_timings(store):
    """A stopped or deleted record still carries the last start's phases (the view shows them);
    its own settle's event says nothing of them."""
    clock = FixedClock(T0)
    service = make_service(store, clock=clock)
    env = service.create("judy", request()).environment
    service.reach("judy", env.id, env.operation, Phase.WORKSPACE)
    clock.advance(seconds=2)
    service.settle("judy", env.id, env.operation, True, "running")
    stopping = service.command("judy", env.id, Command.STOP).environment
    clock.advance(seconds=1)
    service.settle("judy", env.id, stopping.operation, True, "stopped")
    starting = service.command("judy", env.id, Command.START).environment
    service.reach("judy", env.id, starting.operation, Phase.COMPUTE_REQUESTED)
    clock.advance(seconds=3)
    service.settle("judy", env.id, starting.operation, True, "running")
    deleting = service.command("judy", env.id, Command.DELETE).environment
    service.settle("judy", env.id, deleting.operation, True, "deleted")
    settled = [(e.to_status, e.reason) for e in store.events("judy", env.id) if e.actor is Actor.SYSTEM]
    assert settled == [
        (Status.DELETED, "deleted"),
        (Status.RUNNING, "running (compute requested 3.0 s)"),
        (Status.STOPPED, "stopped"),
        (Status.RUNNING, "running (workspace 2.0 s)"),
    ]
    assert store.get("judy", env.id).progress  # the phases are still on the record


def test_connection_returns_the_generated_password_only_when_running(store):
    service = make_service(store)
    env = service.create("erin", request(secrets={"GITHUB_TOKEN": "ghp_secret"})).environment
    with pytest.raises(InvalidState):
        service.connection("erin", env.id)
    run(service, "erin", env.id, Status.RUNNING)
    connection = service.connection("erin", env.id)
    secure = service.secure_environment(service.get("erin", env.id))
    assert connection.password == secure[PASSWORD_KEY] and len(connection.password) >= 24
    assert secure["GITHUB_TOKEN"] == "ghp_secret"
    assert "ghp_secret" not in env.model_dump_json(exclude={"sealed_secrets"})


def test_each_workspace_has_its_own_snapshot_password_and_a_restore_keeps_the_retired_ones(store):
    service = make_service(store)
    env = service.create("gina", request()).environment
    other = service.create("gina", request(name="other")).environment
    secure = service.secure_environment(env)
    assert len(secure[SNAPSHOT_PASSWORD_KEY]) >= 24 and secure[SNAPSHOT_PASSWORD_KEY] != secure[PASSWORD_KEY]
    assert secure[SNAPSHOT_PASSWORD_KEY] != service.secure_environment(other)[SNAPSHOT_PASSWORD_KEY]
    run(service, "gina", env.id, Status.RUNNING)
    service.command("gina", env.id, Command.STOP)
    run(service, "gina", env.id, Status.STOPPED)
    retiring = service.command("gina", env.id, Command.DELETE, Actor.RETENTION, kind=Kind.RETIRE).environment
    snapshots = snapshot_service(service, store)
    assert snapshots.remember_snapshot("gina", env.id, retiring.operation) == "latest"
    service.settle("gina", env.id, retiring.operation, True, "retired", Actor.RETENTION, restorable_days=7)
    restored = snapshots.restore_retired("gina", env.id).environment
    again = service.secure_environment(restored)
    assert again[SNAPSHOT_PASSWORD_KEY] == secure[SNAPSHOT_PASSWORD_KEY]  # the same repository, copied
    assert again[PASSWORD_KEY] != secure[PASSWORD_KEY]  # a new IDE password


def test_update(store):
    service = make_service(store)
    env = service.create("frank", request()).environment
    updated = service.update(
        "frank", env.id, UpdateEnvironmentRequest(name="renamed", idle_timeout_minutes=90)
    )
    assert (updated.name, updated.idle_timeout_minutes, updated.status) == ("renamed", 90, Status.CREATING)
    assert updated.version == env.version + 1


def test_same_idempotency_key_same_body_returns_the_same_environment_once(store):
    service = make_service(store)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: service.create("gina", request(), "key-1"), range(20)))
    ids = {result.environment.id for result in results}
    assert len(ids) == 1
    assert sum(result.accepted for result in results) == 1  # one orchestration would start
    assert len(service.list("gina")) == 1


def test_an_idempotency_key_of_a_deleted_environment_is_a_conflict_never_the_deleted_record(store):
    # Found by schemathesis: a repeated create answered 201 with the kept DELETED record.
    service = make_service(store)
    env = service.create("ivy", request(), "key-3").environment
    run(service, "ivy", env.id, Status.RUNNING)
    service.command("ivy", env.id, Command.DELETE)
    run(service, "ivy", env.id, Status.DELETED)
    with pytest.raises(Conflict, match="no longer exists"):
        service.create("ivy", request(), "key-3")


def first_lookup_misses(store: InMemoryRecords, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A repeat whose first look at its key came before the first request committed: it finds
    nothing that once; the keys looked up are returned as they are asked."""
    lookups: list[str] = []
    looked_up = store.idempotency

    def idempotency(owner: str, key: str) -> IdempotencyRecord | None:
        lookups.append(key)
        return None if len(lookups) == 1 else looked_up(owner, key)

    monkeypatch.setattr(store, "idempotency", idempotency)
    return lookups


def test_a_repeat_that_read_before_its_first_committed_gets_the_first_not_a_quota_refusal(store, monkeypatch):
    """Found by concurrent_creates.py: a retried create looked its key up before the first
    request committed, and by its quota check the first one counted: it was answered 403
    QUOTA_EXCEEDED instead of the environment the first request made."""
    service = make_service(store, max_environments_per_user=2)
    service.create("kira", request(name="other"))
    first = service.create("kira", request(), "key-9").environment  # the quota is now full
    lookups = first_lookup_misses(store, monkeypatch)
    repeat = service.create("kira", request(), "key-9")
    assert (repeat.environment.id, repeat.accepted) == (first.id, False)
    assert lookups == ["key-9", "key-9"]  # looked up again after the refusal
    with pytest.raises(QuotaExceeded):  # a new request is still refused
        service.create("kira", request(), "key-10")
    assert len(service.list("kira")) == 2


def test_same_idempotency_key_different_body_is_a_conflict(store):
    service = make_service(store)
    service.create("hank", request(), "key-2")
    with pytest.raises(Conflict):
        service.create("hank", request(name="other"), "key-2")
    with pytest.raises(Conflict):
        service.create("hank", request(secrets={"GITHUB_TOKEN": "different"}), "key-2")
    assert len(service.list("hank")) == 1
    assert service.create("ivan", request(), "key-2").accepted  # keys are per owner


def test_environment_quota_holds_under_concurrent_creates(store):
    service = make_service(store, max_environments_per_user=5, max_running_per_user=50)

    def attempt(_: int) -> str:
        try:
            service.create("jack", request())
            return "created"
        except QuotaExceeded:
            return "refused"

    with ThreadPoolExecutor(25) as pool:
        outcomes = list(pool.map(attempt, range(25)))
    assert outcomes.count("created") == 5 and outcomes.count("refused") == 20
    assert len(service.list("jack")) == 5
    assert store.usage("jack").environments == 5


def test_running_quota_holds_under_concurrent_starts(store):
    service = make_service(store, max_environments_per_user=30, max_running_per_user=3)
    ids = []
    for _ in range(24):
        env = service.create("kate", request())
        ids.append(env.environment.id)
        run(service, "kate", env.environment.id, Status.RUNNING)
        service.command("kate", env.environment.id, Command.STOP)
        run(service, "kate", env.environment.id, Status.STOPPED)
    assert store.usage("kate").active == 0

    def attempt(env_id: str) -> str:
        try:
            return "started" if service.command("kate", env_id, Command.START).accepted else "noop"
        except QuotaExceeded:
            return "refused"

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(attempt, ids))
    assert outcomes.count("started") == 3 and outcomes.count("refused") == 21
    assert len(service.list("kate", Status.STARTING)) == 3
    assert store.usage("kate").active == 3


def test_racing_commands_on_one_environment_make_one_transition(store):
    service = make_service(store)
    env = service.create("liam", request()).environment
    run(service, "liam", env.id, Status.RUNNING)

    def attempt(command: Command) -> str:
        try:
            return "accepted" if service.command("liam", env.id, command).accepted else "noop"
        except InvalidState:
            return "refused"

    commands = [Command.STOP, Command.DELETE] * 10
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(attempt, commands))
    assert outcomes.count("accepted") == 1 and outcomes.count("refused") == 19
    transitions = [e for e in store.events("liam", env.id) if e.from_status is Status.RUNNING]
    assert len(transitions) == 1


def test_a_size_the_backend_cannot_run_is_refused_at_create(store):
    from shared.wiring import aci_placement

    settings = Settings(jwt_secret="j" * 32, tables_connection="UseDevelopmentStorage=true", secrets_key=KEY)
    service = EnvironmentService(store, settings, FixedClock(T0), aci_placement("eastus"))
    with pytest.raises(
        ValidationFailed, match="'xlarge' is not offered on Azure Container Instances"
    ) as refused:
        service.create("olga", request(size="xlarge"))
    assert refused.value.details == [{"field": "size", "message": "one of ['small', 'medium', 'large']"}]
    for explicit, detail in [
        ({"cpu_cores": 8}, {"field": "cpu_cores", "message": "Azure Container Instances runs at most 4"}),
        ({"cpu_cores": 0.5}, {"field": "cpu_cores", "message": "Azure Container Instances needs at least 1"}),
        (
            {"memory_gb": 2.25},
            {"field": "memory_gb", "message": "Azure Container Instances takes multiples of 0.1"},
        ),
    ]:
        with pytest.raises(ValidationFailed, match="cannot run on Azure Container Instances") as refused:
            service.create("olga", request(**explicit))
        assert refused.value.details == [detail]
    assert service.create("olga", request(size="large")).environment.cpu_cores == 4
    assert service.create("olga", request(cpu_cores=1.5, memory_gb=3.2)).environment.size == "custom"
    assert len(service.list("olga")) == 2
