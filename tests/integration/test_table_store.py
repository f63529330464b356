"""TableEnvironmentStore against a real Azurite: round trips, concurrency, quota, audit, index."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceResponseError
from azure.data.tables import TableClient, TableServiceClient

from shared.adapters.tables.client import transport_options
from shared.adapters.tables.records import TableEnvironmentStore
from shared.adapters.tables.rows import USAGE_ROW, owner_key
from shared.adapters.tables.status_index import DIRECTORY
from shared.adapters.tables.turns import OwnerTurns
from shared.domain.environment import Actor, CloudProvider, Environment, Status
from shared.domain.lifecycle import ACTIVE
from shared.domain.quota import Limits, Usage
from shared.errors import ConcurrencyConflict, QuotaExceeded
from shared.services.ports import Change, IdempotencyRecord, IndexEntry
from shared.settings import Settings

T0 = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
ROOMY = Limits(max_environments=50, max_active=50)
OWNER = "auth0|user-1"


def make_env(owner: str = OWNER, **fields: Any) -> Environment:
    values: dict[str, Any] = {
        "id": f"env-{uuid.uuid4().hex[:16]}",
        "owner": owner,
        "name": "demo",
        "status": Status.CREATING,
        "template": "python",
        "size": "medium",
        "cpu_cores": 2.0,
        "memory_gb": 4.0,
        "storage_gb": 50,
        "cloud_provider": CloudProvider.LOCAL,
        "cloud_region": "local-simulated",
        "idle_timeout_minutes": 30,
        "last_accessed_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Environment(**values)


def change(at: datetime = T0, actor: Actor = Actor.SYSTEM, reason: str = "test") -> Change:
    return Change(actor, reason, at)


def move(store: TableEnvironmentStore, env: Environment, status: Status, **kwargs: Any) -> Environment:
    at = kwargs.pop("at", env.updated_at + timedelta(seconds=1))
    limits = kwargs.pop("limits", None)
    updated = env.model_copy(update={"status": status, **kwargs})
    return store.save(env, updated, change(at, reason=f"to {status.value}"), limits)


def index_statuses(azurite: str, store: TableEnvironmentStore, environment_id: str) -> list[str]:
    """Every status under which the index lists an environment (a cross-partition scan: tests only)."""
    with TableClient.from_connection_string(azurite, store.index_table) as table:
        found = table.query_entities("RowKey eq @id", parameters={"id": environment_id})
        # The id → owner directory row is not a status.
        return sorted(str(row["PartitionKey"]) for row in found if row["PartitionKey"] != DIRECTORY)


def real_usage(store: TableEnvironmentStore, owner: str) -> Usage:
    live = [env for env in store.list(owner) if env.status is not Status.DELETED]
    return Usage(len(live), sum(env.status in ACTIVE for env in live))


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on `count` threads released at once; returns results or raised exceptions."""
    barrier = threading.Barrier(count)

    def attempt(number: int) -> Any:
        barrier.wait()
        try:
            return work(number)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


# --- round trips -----------------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: TableEnvironmentStore) -> None:
    env = make_env(
        status_reason="provisioning",
        vs_code_url="https://ide.example.test/env",
        ssh_connection_string="ssh -p 2222 dev8@host",
        ports=[3000, 8080],
        environment_variables={"GREETING": "héllo ✓ 𝄞", "EMPTY": "", "JSONISH": '{"a": [1, 2]}'},
        repository_url="https://git.example.test/repo.git",
        started_at=T0 + timedelta(minutes=1),
        operation="env-create-1",
        sealed_secrets="v1." + "A" * 100_000,  # longer than one table property may hold
        # Not UTC on the way in; must come back as the same instant in UTC.
        last_accessed_at=datetime(2025, 3, 4, 7, 6, 7, 123456, tzinfo=timezone(timedelta(hours=2))),
    )
    created = store.create(env, change(), ROOMY)

    assert created.version == 1
    assert created.etag
    got = store.get(OWNER, env.id)
    assert got == created
    assert got.environment_variables == env.environment_variables
    assert got.sealed_secrets == env.sealed_secrets
    assert got.ports == [3000, 8080]
    assert got.stopped_at is None and got.status_reason == "provisioning"
    for moment in (got.last_accessed_at, got.created_at, got.updated_at, got.started_at):
        assert type(moment) is datetime and moment.tzinfo is UTC
    assert got.last_accessed_at == T0


def test_get_missing_is_none_and_usage_starts_at_zero(store: TableEnvironmentStore) -> None:
    assert store.get(OWNER, "env-0000000000000000") is None
    assert store.usage(OWNER) == Usage()
    assert store.events(OWNER, "env-0000000000000000") == []
    assert store.idempotency(OWNER, "nope") is None


def test_list_sees_only_the_owners_records_oldest_first(store: TableEnvironmentStore) -> None:
    # Ids sort opposite to creation time, so the order must come from created_at.
    late = make_env(id="env-0000000000000001", created_at=T0 + timedelta(hours=1))
    early = make_env(id="env-fffffffffffffff1", created_at=T0)
    other = make_env(owner="auth0|user-2")
    for env in (late, early, other):
        store.create(env, change(), ROOMY, IdempotencyRecord(env.id, "h", env.id, T0))

    mine = store.list(OWNER)
    assert [env.id for env in mine] == [early.id, late.id]
    assert [env.id for env in store.list("auth0|user-2")] == [other.id]
    assert store.list("auth0|nobody") == []


def test_owner_with_key_forbidden_characters(store: TableEnvironmentStore) -> None:
    odd = "tenant/a#b?c\\d'e%2Ff\x01ü"
    lookalike = "tenant%2Fa#b?c\\d'e%2Ff\x01ü"  # must not share a partition with `odd`
    env = store.create(make_env(owner=odd), change(), ROOMY, IdempotencyRecord("k", "h", "x", T0))
    twin = store.create(make_env(owner=lookalike), change(), ROOMY)

    assert store.get(odd, env.id) == env
    assert [e.id for e in store.list(odd)] == [env.id]
    assert [e.id for e in store.list(lookalike)] == [twin.id]
    running = move(store, env, Status.RUNNING)
    store.touch(odd, env.id, T0 + timedelta(hours=1))
    assert store.get(odd, env.id).last_accessed_at == T0 + timedelta(hours=1)  # type: ignore[union-attr]
    assert store.usage(odd) == Usage(1, 1)
    assert [e.to_status for e in store.events(odd, env.id)] == [Status.RUNNING, Status.CREATING]
    assert store.idempotency(odd, "k") is not None
    entry = next(store.index.candidates(Status.RUNNING))
    assert (entry.owner, entry.environment_id) == (odd, running.id)


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "/", "#x"])
def test_an_id_that_would_break_a_key_is_refused_before_any_request(
    store: TableEnvironmentStore, suffix: str
) -> None:
    env = store.create(make_env(), change(), ROOMY)
    before = store._tables.stats.snapshot()
    with pytest.raises(ValueError, match="invalid environment id"):
        store.get(OWNER, env.id + suffix)  # `$` alone took a trailing newline: a key Azure refuses
    with pytest.raises(ValueError, match="invalid environment id"):
        store.events(OWNER, env.id + suffix)
    assert store._tables.stats.snapshot() == before


def test_very_long_owner_is_hashed_into_a_legal_key(store: TableEnvironmentStore) -> None:
    owner = "/" * 2000
    env = store.create(make_env(owner=owner), change(), ROOMY)
    assert store.get(owner, env.id) == env
    assert store.get("/" * 1999, env.id) is None


# --- optimistic concurrency and lifecycle edges --------------------------------------------------------


def test_save_with_stale_etag_conflicts_and_changes_nothing(
    store: TableEnvironmentStore, azurite: str
) -> None:
    created = store.create(make_env(), change(), ROOMY)
    running = move(store, created, Status.RUNNING)
    assert running.version == 2 and running.etag != created.etag

    with pytest.raises(ConcurrencyConflict):
        move(store, created, Status.ERROR)  # `created` carries the old ETag
    with pytest.raises(ConcurrencyConflict):
        store.save(created, created.model_copy(update={"name": "renamed"}), change())

    assert store.get(OWNER, created.id) == running
    assert [e.to_status for e in store.events(OWNER, created.id)] == [Status.RUNNING, Status.CREATING]
    assert store.usage(OWNER) == Usage(1, 1)
    assert index_statuses(azurite, store, created.id) == ["RUNNING"]


def test_save_bumps_version_sets_updated_at_and_returns_new_etag(store: TableEnvironmentStore) -> None:
    created = store.create(make_env(), change(), ROOMY)
    later = T0 + timedelta(minutes=5)
    renamed = store.save(created, created.model_copy(update={"name": "renamed"}), change(later))
    assert (renamed.version, renamed.updated_at, renamed.name) == (2, later, "renamed")
    assert store.get(OWNER, created.id) == renamed
    assert store.events(OWNER, created.id)[0].to_status is Status.CREATING  # no status change, no event
    again = store.save(renamed, renamed.model_copy(update={"name": "again"}), change(later))
    assert again.version == 3


def test_illegal_edge_is_refused_before_any_write(store: TableEnvironmentStore, azurite: str) -> None:
    created = store.create(make_env(), change(), ROOMY)
    before = store.stats.snapshot()
    for target in (Status.STOPPED, Status.STOPPING, Status.DELETED, Status.STARTING):
        with pytest.raises(ValueError, match="not a lifecycle edge"):
            move(store, created, target)
    assert store.stats.snapshot() == before
    assert store.get(OWNER, created.id) == created
    assert index_statuses(azurite, store, created.id) == ["CREATING"]
    with pytest.raises(ValueError):
        store.create(make_env(status=Status.RUNNING), change(), ROOMY)


def test_audit_trail_is_newest_first_with_every_transition(store: TableEnvironmentStore) -> None:
    env = store.create(make_env(), change(T0, Actor.USER, "created"), ROOMY)
    steps = [
        (Status.RUNNING, Actor.SYSTEM, "provisioned"),
        (Status.STOPPING, Actor.IDLE_SWEEP, "idle for 30 minutes"),
        (Status.STOPPED, Actor.SYSTEM, "stopped"),
        (Status.STARTING, Actor.USER, "start requested"),
        (Status.ERROR, Actor.RECONCILER, "compute vanished"),
        (Status.DELETING, Actor.RETENTION, "retention"),
        (Status.DELETED, Actor.SYSTEM, "deleted"),
    ]
    expected = [(None, Status.CREATING, Actor.USER, "created", T0)]
    for number, (status, actor, reason) in enumerate(steps, start=1):
        at = T0 + timedelta(minutes=number)
        source = env.status
        env = store.save(env, env.model_copy(update={"status": status}), Change(actor, reason, at))
        expected.append((source, status, actor, reason, at))

    events = store.events(OWNER, env.id)
    got = [(e.from_status, e.to_status, e.actor, e.reason, e.at) for e in events]
    assert got == expected[::-1]
    assert all(e.environment_id == env.id for e in events)
    assert [e.to_status for e in store.events(OWNER, env.id, limit=2)] == [Status.DELETED, Status.DELETING]
    assert store.events(OWNER, env.id, limit=0) == []


def test_events_of_one_environment_do_not_leak_into_another(store: TableEnvironmentStore) -> None:
    # `env-1` is a prefix of `env-10`: the range must stop at the id's own separator.
    one = store.create(make_env(id="env-1"), change(), ROOMY)
    ten = store.create(make_env(id="env-10"), change(), ROOMY)
    move(store, ten, Status.RUNNING)
    assert [e.environment_id for e in store.events(OWNER, one.id)] == ["env-1"]
    assert len(store.events(OWNER, ten.id)) == 2


# --- idempotency -------------------------------------------------------------------------------------


def test_idempotency_round_trip_and_duplicate_key(store: TableEnvironmentStore, azurite: str) -> None:
    key = "client-key-é/#?" + "x" * 300
    first = make_env()
    record = IdempotencyRecord(key, "hash-1", first.id, T0)
    store.create(first, change(), ROOMY, record)
    assert store.idempotency(OWNER, key) == record
    assert store.idempotency("auth0|someone-else", key) is None

    second = make_env()
    with pytest.raises(ConcurrencyConflict):
        store.create(second, change(), ROOMY, IdempotencyRecord(key, "hash-2", second.id, T0))
    assert store.get(OWNER, second.id) is None
    assert store.idempotency(OWNER, key) == record
    assert store.usage(OWNER) == Usage(1, 1)
    assert index_statuses(azurite, store, second.id) == []  # the write-ahead row was withdrawn


def test_duplicate_environment_id_conflicts(store: TableEnvironmentStore) -> None:
    env = store.create(make_env(), change(), ROOMY)
    with pytest.raises(ConcurrencyConflict):
        store.create(make_env(id=env.id, name="other"), change(), ROOMY)
    assert store.get(OWNER, env.id) == env
    assert store.usage(OWNER) == Usage(1, 1)


# --- quota under concurrency ---------------------------------------------------------------------------


def test_quota_holds_under_concurrent_creates(store: TableEnvironmentStore, azurite: str) -> None:
    limits = Limits(max_environments=5, max_active=50)
    envs = [make_env() for _ in range(24)]
    results = run_together(len(envs), lambda i: store.create(envs[i], change(), limits))

    kinds = Counter(type(result).__name__ for result in results)
    assert kinds == {"Environment": 5, "QuotaExceeded": 19}, results
    assert len(store.list(OWNER)) == 5
    assert store.usage(OWNER) == real_usage(store, OWNER) == Usage(5, 5)
    # Refused creates leave nothing behind in the index either.
    assert len(list(store.index.candidates(Status.CREATING))) == 5


def another_process(store: TableEnvironmentStore, azurite: str) -> TableEnvironmentStore:
    """A store on the same tables with nothing shared in memory: another Functions instance."""
    prefix = store.environments_table.removesuffix("Environments")
    return TableEnvironmentStore(TableServiceClient.from_connection_string(azurite), prefix)


def test_quota_holds_under_concurrent_creates_from_several_processes(
    store: TableEnvironmentStore, azurite: str
) -> None:
    # Writers of one owner in one process take turns; across processes the usage row's ETag decides.
    stores = [store, *(another_process(store, azurite) for _ in range(3))]
    limits = Limits(max_environments=5, max_active=50)
    envs = [make_env() for _ in range(24)]
    results = run_together(len(envs), lambda i: stores[i % 4].create(envs[i], change(), limits))

    kinds = Counter(type(result).__name__ for result in results)
    assert kinds == {"Environment": 5, "QuotaExceeded": 19}, results
    assert store.usage(OWNER) == real_usage(store, OWNER) == Usage(5, 5)
    assert len(list(store.index.candidates(Status.CREATING))) == 5


def test_creates_of_one_owner_in_one_process_lose_no_transaction(store: TableEnvironmentStore) -> None:
    # Ten at once used to race for the usage row: all but one lost, read it again and retried.
    store._turns = OwnerTurns(wait_seconds=120)  # a slow machine must not make a writer give up
    store.stats.reset()
    results = run_together(10, lambda i: store.create(make_env(), change(), ROOMY))

    assert all(isinstance(result, Environment) for result in results), results
    assert store.stats.snapshot()["transactions"] == 10
    assert store.usage(OWNER) == real_usage(store, OWNER) == Usage(10, 10)
    # Status changes that move the counters take the same turns: four stops commit once each.
    running = [move(store, env, Status.RUNNING) for env in results[:4]]
    store.stats.reset()
    stopped = run_together(4, lambda i: move(store, running[i], Status.STOPPING))
    assert store.stats.snapshot()["transactions"] == 4, stopped
    assert store.usage(OWNER) == real_usage(store, OWNER) == Usage(10, 6)


def test_a_stale_handed_over_usage_row_is_read_again(store: TableEnvironmentStore, azurite: str) -> None:
    # The turn (private: no caller can reach it) holds counters another process has since
    # changed: the create's first attempt is refused by the ETag, the second commits on a fresh read.
    store.create(make_env(), change(), ROOMY)
    with store._turns.take(owner_key(OWNER)) as turn:
        turn.usage = store._current_usage(owner_key(OWNER))
        another_process(store, azurite).create(make_env(), change(), ROOMY)
        store.stats.reset()
        store.create(make_env(), change(), ROOMY)  # the turn is re-entrant: this thread holds it
    assert store.stats.snapshot()["transactions"] == 2
    assert store.usage(OWNER) == real_usage(store, OWNER) == Usage(3, 3)


def test_max_active_holds_under_concurrent_starts(store: TableEnvironmentStore) -> None:
    stopped = []
    for _ in range(8):
        env = store.create(make_env(), change(), ROOMY)
        for status in (Status.RUNNING, Status.STOPPING, Status.STOPPED):
            env = move(store, env, status)
        stopped.append(env)
    assert store.usage(OWNER) == Usage(8, 0)

    limits = Limits(max_environments=50, max_active=3)
    results = run_together(len(stopped), lambda i: move(store, stopped[i], Status.STARTING, limits=limits))

    kinds = Counter(type(result).__name__ for result in results)
    assert kinds == {"Environment": 3, "QuotaExceeded": 5}, results
    statuses = Counter(env.status for env in store.list(OWNER))
    assert statuses == {Status.STARTING: 3, Status.STOPPED: 5}
    assert store.usage(OWNER) == real_usage(store, OWNER) == Usage(8, 3)
    assert len(list(store.index.candidates(Status.STARTING))) == 3


def test_quota_refuses_before_writing_and_only_growth(store: TableEnvironmentStore) -> None:
    one = Limits(max_environments=1, max_active=1)
    env = move(store, store.create(make_env(), change(), one), Status.RUNNING)
    with pytest.raises(QuotaExceeded):
        store.create(make_env(), change(), one)
    # Shrinking moves pass even at the limit.
    stopping = move(store, env, Status.STOPPING, limits=Limits(1, 0))
    assert store.usage(OWNER) == Usage(1, 0)
    move(store, stopping, Status.ERROR, limits=Limits(0, 0))


def test_lost_usage_row_is_recounted(store: TableEnvironmentStore, azurite: str) -> None:
    first = store.create(make_env(), change(), ROOMY)
    move(store, first, Status.RUNNING)
    gone = store.create(make_env(), change(), ROOMY)
    for status in (Status.RUNNING, Status.DELETING, Status.DELETED):
        gone = move(store, gone, status)  # kept for good, counted for nothing
    with TableClient.from_connection_string(azurite, store.environments_table) as table:
        table.delete_entity(owner_key(OWNER), USAGE_ROW)
    assert store.usage(OWNER) == Usage()
    store.create(make_env(), change(), ROOMY)
    assert store.usage(OWNER) == Usage(2, 2)


# --- status index ----------------------------------------------------------------------------------


def walk(store: TableEnvironmentStore, azurite: str, env: Environment, path: list[Status]) -> Environment:
    """Move along `path`, checking after every step that the index lists exactly the truth."""
    for status in path:
        env = move(store, env, status)
        assert store.get(env.owner, env.id) == env
        expected = [] if status is Status.DELETED else [status.value]
        assert index_statuses(azurite, store, env.id) == expected, f"after moving to {status.value}"
        listed = [entry.environment_id for entry in store.index.candidates(status)]
        assert (env.id in listed) is (status is not Status.DELETED)
        assert store.usage(env.owner) == real_usage(store, env.owner)
    return env


@pytest.mark.parametrize(
    "path",
    [
        [Status.RUNNING, Status.STOPPING, Status.STOPPED, Status.STARTING, Status.RUNNING, Status.DELETING,
         Status.DELETED],
        [Status.ERROR, Status.STARTING, Status.ERROR, Status.DELETING, Status.ERROR, Status.DELETING,
         Status.DELETED],
        [Status.RUNNING, Status.STOPPING, Status.ERROR, Status.STARTING, Status.RUNNING, Status.STOPPING,
         Status.STOPPED, Status.DELETING, Status.DELETED],
    ],
    ids=["happy", "errors", "stop-fails"],
)  # fmt: skip
def test_index_follows_every_transition(
    store: TableEnvironmentStore, azurite: str, path: list[Status]
) -> None:
    env = store.create(make_env(), change(), ROOMY)
    assert index_statuses(azurite, store, env.id) == ["CREATING"]
    walk(store, azurite, env, path)
    assert store.usage(OWNER) == Usage(0, 0)


def test_failed_save_leaves_at_most_an_extra_candidate_that_repair_removes(
    store: TableEnvironmentStore, azurite: str
) -> None:
    created = store.create(make_env(), change(), ROOMY)
    running = move(store, created, Status.RUNNING)
    with pytest.raises(ConcurrencyConflict):
        move(store, created, Status.ERROR)  # stale
    listed = index_statuses(azurite, store, created.id)
    assert "RUNNING" in listed and len(listed) <= 2

    for status in Status:
        for entry in list(store.index.candidates(status)):
            store.index.repair_index(entry)
    assert index_statuses(azurite, store, created.id) == ["RUNNING"]
    assert store.get(OWNER, created.id) == running


class LostResponseStore(TableEnvironmentStore):
    """Fails every commit as if the answer was lost: the outcome is unknown to the writer."""

    def _commit(self, operations: list[Any]) -> list[Any]:
        raise ServiceResponseError("connection reset")

    def _replace(self, operation: Any) -> Any:  # a lone record write is sent without a batch
        raise ServiceResponseError("connection reset")


def test_crash_after_write_ahead_keeps_a_superset_until_repaired(azurite: str) -> None:
    service = TableServiceClient.from_connection_string(azurite)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    healthy = TableEnvironmentStore(service, prefix)
    healthy.ensure_tables()
    running = move(healthy, healthy.create(make_env(), change(), ROOMY), Status.RUNNING)

    with pytest.raises(ServiceResponseError):
        move(LostResponseStore(service, prefix), running, Status.STOPPING)
    assert index_statuses(azurite, healthy, running.id) == ["RUNNING", "STOPPING"]

    # The STOPPING row announces a newer version than the record: a write in flight, kept...
    (entry,) = list(healthy.index.candidates(Status.STOPPING))
    healthy.index.repair_index(entry)
    assert index_statuses(azurite, healthy, running.id) == ["RUNNING", "STOPPING"]
    # ...until the grace period says it was a failed write.
    TableEnvironmentStore(service, prefix, pending_grace=timedelta(0)).index.repair_index(entry)
    assert index_statuses(azurite, healthy, running.id) == ["RUNNING"]
    for name in healthy.table_names:
        service.delete_table(name)


def test_idle_candidates_are_filtered_server_side(store: TableEnvironmentStore) -> None:
    def running_with(minutes_idle_timeout: int, accessed: datetime) -> Environment:
        env = store.create(make_env(idle_timeout_minutes=minutes_idle_timeout), change(), ROOMY)
        return move(store, env, Status.RUNNING, last_accessed_at=accessed)

    soon = running_with(10, T0)  # idle_stop_at T0+10m
    later = running_with(20, T0)  # T0+20m
    latest = running_with(5, T0 + timedelta(minutes=35))  # T0+40m
    stopped = walk_to_stopped(store, store.create(make_env(), change(), ROOMY))

    def idle_ids(before: datetime) -> set[str]:
        return {entry.environment_id for entry in store.index.candidates(Status.RUNNING, idle_before=before)}

    assert idle_ids(T0 + timedelta(minutes=25)) == {soon.id, later.id}
    assert idle_ids(T0 + timedelta(minutes=20)) == {soon.id, later.id}  # `le`: due exactly at t
    assert idle_ids(T0 + timedelta(minutes=5)) == set()
    assert {e.environment_id for e in store.index.candidates(Status.RUNNING)} == {
        soon.id,
        later.id,
        latest.id,
    }
    assert [e.environment_id for e in store.index.candidates(Status.STOPPED)] == [stopped.id]
    entry = next(e for e in store.index.candidates(Status.RUNNING) if e.environment_id == soon.id)
    assert (entry.owner, entry.idle_stop_at) == (OWNER, T0 + timedelta(minutes=10))
    with pytest.raises(ValueError):
        store.index.candidates(Status.STOPPED, idle_before=T0)


def walk_to_stopped(store: TableEnvironmentStore, env: Environment) -> Environment:
    for status in (Status.RUNNING, Status.STOPPING, Status.STOPPED):
        env = move(store, env, status)
    return env


def test_touch_lags_the_index_until_repair_and_shorter_timeouts_apply_at_once(
    store: TableEnvironmentStore,
) -> None:
    env = move(store, store.create(make_env(idle_timeout_minutes=10), change(), ROOMY), Status.RUNNING)
    due = T0 + timedelta(minutes=15)

    store.touch(OWNER, env.id, T0 + timedelta(minutes=30))  # truth now idle at T0+40m
    (entry,) = list(
        store.index.candidates(Status.RUNNING, idle_before=due)
    )  # the index lags: still a candidate
    store.index.repair_index(entry)
    assert list(store.index.candidates(Status.RUNNING, idle_before=due)) == []
    (fresh,) = list(store.index.candidates(Status.RUNNING))
    assert fresh.idle_stop_at == T0 + timedelta(minutes=40)

    # A longer timeout must not hide it before a repair; a shorter one shows at once.
    current = store.get(OWNER, env.id)
    assert current is not None
    longer = store.save(current, current.model_copy(update={"idle_timeout_minutes": 60}), change())
    assert next(store.index.candidates(Status.RUNNING)).idle_stop_at == T0 + timedelta(minutes=40)
    store.save(longer, longer.model_copy(update={"idle_timeout_minutes": 5}), change())
    assert next(store.index.candidates(Status.RUNNING)).idle_stop_at == T0 + timedelta(minutes=35)


def test_a_later_writer_never_raises_an_in_flight_lower_idle_time(azurite: str) -> None:
    service = TableServiceClient.from_connection_string(azurite)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    healthy = TableEnvironmentStore(service, prefix)
    healthy.ensure_tables()
    env = move(healthy, healthy.create(make_env(), change(), ROOMY), Status.RUNNING)  # idle at T0+30m

    shorter = env.model_copy(update={"idle_timeout_minutes": 5})
    with pytest.raises(ServiceResponseError):  # may or may not have landed: the index must allow for it
        LostResponseStore(service, prefix).save(env, shorter, change())
    healthy.save(env, env.model_copy(update={"idle_timeout_minutes": 20}), change())

    (entry,) = list(healthy.index.candidates(Status.RUNNING))
    assert entry.idle_stop_at == T0 + timedelta(minutes=5)
    for name in healthy.table_names:
        service.delete_table(name)


def test_repair_removes_rows_of_missing_records_and_leaves_true_ones(store: TableEnvironmentStore) -> None:
    env = store.create(make_env(), change(), ROOMY)
    (entry,) = list(store.index.candidates(Status.CREATING))
    store.index.repair_index(entry)  # true: kept
    assert [e.environment_id for e in store.index.candidates(Status.CREATING)] == [env.id]
    store.index.repair_index(entry)  # idempotent
    ghost = IndexEntry(Status.CREATING, OWNER, "env-00000000000000aa", None, T0)
    store.index.repair_index(ghost)  # no such row: nothing to do


# --- touch -----------------------------------------------------------------------------------------


def test_touch_never_moves_backwards_and_keeps_other_fields(store: TableEnvironmentStore) -> None:
    env = move(store, store.create(make_env(), change(), ROOMY), Status.RUNNING)
    store.touch(OWNER, env.id, T0 + timedelta(minutes=10))
    store.touch(OWNER, env.id, T0 + timedelta(minutes=5))
    store.touch(OWNER, env.id, T0 - timedelta(days=1))
    got = store.get(OWNER, env.id)
    assert got is not None
    assert got.last_accessed_at == T0 + timedelta(minutes=10)
    assert got.model_dump(exclude={"last_accessed_at", "etag"}) == env.model_dump(
        exclude={"last_accessed_at", "etag"}
    )
    store.touch(OWNER, "env-00000000000000ff", T0)  # missing: no-op, no row created
    assert store.get(OWNER, "env-00000000000000ff") is None


def test_concurrent_touches_keep_the_latest(store: TableEnvironmentStore) -> None:
    env = store.create(make_env(), change(), ROOMY)
    moments = [T0 + timedelta(seconds=(i * 7919) % 101) for i in range(16)]
    results = run_together(len(moments), lambda i: store.touch(OWNER, env.id, moments[i]))
    assert all(result is None for result in results), results
    got = store.get(OWNER, env.id)
    assert got is not None and got.last_accessed_at == max(moments)


def test_touch_makes_a_stale_save_conflict(store: TableEnvironmentStore) -> None:
    env = move(store, store.create(make_env(), change(), ROOMY), Status.RUNNING)
    store.touch(OWNER, env.id, T0 + timedelta(hours=1))
    with pytest.raises(ConcurrencyConflict):
        move(store, env, Status.STOPPING)  # would otherwise write last_accessed_at back


# --- plumbing --------------------------------------------------------------------------------------


def test_ping_stats_and_idempotent_ensure_tables(store: TableEnvironmentStore, azurite: str) -> None:
    store.ensure_tables()
    store.stats.reset()
    store.ping()
    store.get(OWNER, "env-0000000000000000")
    store.list(OWNER)
    store.create(make_env(), change(), ROOMY)
    stats = store.stats.snapshot()
    assert stats["queries"] >= 2 and stats["point_reads"] >= 2 and stats["transactions"] == 1
    missing = TableEnvironmentStore(TableServiceClient.from_connection_string(azurite), "tNoSuchTables")
    with pytest.raises(ResourceNotFoundError):
        missing.ping()


def test_from_settings_uses_the_connection_string(azurite: str) -> None:
    settings = Settings(
        jwt_secret="x" * 32,
        tables_connection=azurite,
        secrets_key="A" * 43 + "=",
        table_prefix=f"t{uuid.uuid4().hex[:12]}",
    )
    built = TableEnvironmentStore.from_settings(settings)
    built.ensure_tables()
    built.ping()
    assert built.environments_table == f"{settings.table_prefix}Environments"


def test_module_import_does_not_load_azure_identity() -> None:
    code = "import sys, shared.adapters.tables.records; print('azure.identity' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_the_directory_maps_ids_to_owners_for_good(store: TableEnvironmentStore) -> None:
    env = store.create(make_env("o/wner#1"), change(T0), ROOMY)
    assert store.index.owner_of(env.id) == "o/wner#1"
    running = move(store, env, Status.RUNNING)
    deleting = move(store, running, Status.DELETING)
    move(store, deleting, Status.DELETED)
    assert store.index.owner_of(env.id) == "o/wner#1"  # the reconciler still finds DELETED records
    assert store.index.owner_of("env-ffffffffffffffff") is None


def test_a_swept_candidate_is_retired_by_the_etag_its_query_returned(
    store: TableEnvironmentStore, azurite: str
) -> None:
    env = move(store, store.create(make_env(), change(), ROOMY), Status.RUNNING)
    (entry,) = list(store.index.candidates(Status.RUNNING))
    current = store.get(OWNER, entry.environment_id)
    assert current is not None
    store.stats.reset()
    move(store, current, Status.STOPPING)
    # The usage row is the only read: the RUNNING row went by the ETag the query saw.
    assert store.stats.snapshot()["point_reads"] == 1
    assert index_statuses(azurite, store, env.id) == ["STOPPING"]


def test_a_candidate_row_changed_since_its_query_is_read_again_before_it_goes(
    store: TableEnvironmentStore, azurite: str
) -> None:
    env = move(store, store.create(make_env(), change(), ROOMY), Status.RUNNING)
    (entry,) = list(store.index.candidates(Status.RUNNING))  # remembered with its ETag
    store.touch(OWNER, env.id, T0 + timedelta(hours=1))
    store.index.repair_index(entry)  # raises the row's idle_stop_at: a new ETag
    current = store.get(OWNER, env.id)
    assert current is not None
    store.stats.reset()
    move(store, current, Status.STOPPING)
    assert store.stats.snapshot()["point_reads"] == 2  # the usage row, and the changed index row
    assert index_statuses(azurite, store, env.id) == ["STOPPING"]


def test_a_remembered_row_of_a_newer_write_is_kept(store: TableEnvironmentStore, azurite: str) -> None:
    env = move(store, store.create(make_env(), change(), ROOMY), Status.RUNNING)
    list(store.index.candidates(Status.RUNNING))  # the row announces version 2
    # A writer holding an older record (version 1) that leaves RUNNING must not remove version 2's row.
    store.index.retire(Status.RUNNING, env.model_copy(update={"version": 1}))
    assert index_statuses(azurite, store, env.id) == ["RUNNING"]


def test_sixteen_threads_share_the_pool_without_dropping_connections(
    azurite: str, caplog: pytest.LogCaptureFixture
) -> None:
    """requests' default pool keeps 10 connections per host: a sweep's 16 workers would open and
    drop the rest on every call (urllib3 logs each drop)."""
    service = TableServiceClient.from_connection_string(azurite, **transport_options())
    client = service.create_table(f"pool{uuid.uuid4().hex[:12]}")
    client.upsert_entity({"PartitionKey": "p", "RowKey": "r"})
    barrier = threading.Barrier(16)

    def read(_: int) -> None:
        barrier.wait()
        for _ in range(20):
            client.get_entity("p", "r")

    with caplog.at_level("WARNING", logger="urllib3.connectionpool"), ThreadPoolExecutor(16) as pool:
        list(pool.map(read, range(16)))
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    service.delete_table(client.table_name)


# --- a sweep's moves: their index writes together ------------------------------------------------


@contextlib.contextmanager
def moving(
    store: TableEnvironmentStore, moves: list[tuple[Environment, Status]], at: datetime
) -> Iterator[None]:
    """A sweep's window: the rows written ahead, the commits, then the index settled."""
    ahead = store.index.write_ahead(moves, at)
    try:
        yield
    finally:
        store.index.settle(ahead)


def running_fleet(store: TableEnvironmentStore, count: int) -> list[Environment]:
    return [move(store, store.create(make_env(), change(), ROOMY), Status.RUNNING) for _ in range(count)]


def indexed_versions(azurite: str, store: TableEnvironmentStore, status: Status) -> dict[str, int]:
    with TableClient.from_connection_string(azurite, store.index_table) as table:
        found = table.query_entities("PartitionKey eq @status", parameters={"status": status.value})
        return {str(row["RowKey"]): int(row["version"]) for row in found}


def test_a_windows_moves_write_their_index_rows_in_two_transactions(
    store: TableEnvironmentStore, azurite: str
) -> None:
    fleet = running_fleet(store, 5)
    list(store.index.candidates(Status.RUNNING))  # remembered with their ETags, as a sweep's query
    at = T0 + timedelta(hours=1)
    store.stats.reset()
    with moving(store, [(env, Status.STOPPING) for env in fleet], at):
        stopped = [move(store, env, Status.STOPPING, at=at) for env in fleet]
    stats = store.stats.snapshot()
    assert stats["writes"] == 0  # no index row written or deleted on its own
    assert stats["transactions"] == len(fleet) + 2  # the commits, the rows ahead, the rows left
    assert stats["point_reads"] == len(fleet)  # the usage row of each commit, nothing of the index
    for env in stopped:
        assert index_statuses(azurite, store, env.id) == ["STOPPING"]
        assert indexed_versions(azurite, store, Status.STOPPING)[env.id] == env.version


def test_rows_written_ahead_for_moves_no_commit_made_are_withdrawn(
    store: TableEnvironmentStore, azurite: str
) -> None:
    moved, left = running_fleet(store, 2)
    at = T0 + timedelta(hours=1)
    with moving(store, [(moved, Status.STOPPING), (left, Status.STOPPING)], at):
        move(store, moved, Status.STOPPING, at=at)
        # A superset meanwhile: the row ahead is there before any commit (a user acted first on `left`).
        assert index_statuses(azurite, store, left.id) == ["RUNNING", "STOPPING"]
    assert index_statuses(azurite, store, left.id) == ["RUNNING"]
    assert index_statuses(azurite, store, moved.id) == ["STOPPING"]


def test_a_leftover_row_makes_each_commit_announce_its_own(
    store: TableEnvironmentStore, azurite: str
) -> None:
    first, second = running_fleet(store, 2)
    # A STOPPING row of `second` left by an earlier write that failed: the rows ahead cannot be created.
    store.index.announce(second.model_copy(update={"status": Status.STOPPING, "version": 9}), second)
    at = T0 + timedelta(hours=1)
    store.stats.reset()
    with moving(store, [(first, Status.STOPPING), (second, Status.STOPPING)], at):
        stopped = [move(store, env, Status.STOPPING, at=at) for env in (first, second)]
    assert store.stats.snapshot()["writes"] >= 2  # announced one at a time, as lone commits do
    for env in stopped:
        assert index_statuses(azurite, store, env.id) == ["STOPPING"]
    versions = indexed_versions(azurite, store, Status.STOPPING)
    assert versions[first.id] == stopped[0].version
    assert versions[second.id] == 9  # a newer version's row is never lowered


def test_a_row_changed_since_its_query_is_retired_on_its_own(
    store: TableEnvironmentStore, azurite: str
) -> None:
    first, second = running_fleet(store, 2)
    entries = {entry.environment_id: entry for entry in store.index.candidates(Status.RUNNING)}
    store.touch(OWNER, second.id, T0 + timedelta(hours=1))
    store.index.repair_index(entries[second.id])  # a new ETag: the transaction of deletes is refused
    fresh = store.get(OWNER, second.id)
    assert fresh is not None
    at = T0 + timedelta(hours=2)
    with moving(store, [(first, Status.STOPPING), (fresh, Status.STOPPING)], at):
        stopped = [move(store, env, Status.STOPPING, at=at) for env in (first, fresh)]
    for env in stopped:
        assert index_statuses(azurite, store, env.id) == ["STOPPING"]


def test_commits_outside_the_moves_keep_their_own_index_writes(
    store: TableEnvironmentStore, azurite: str
) -> None:
    swept, other = running_fleet(store, 2)
    at = T0 + timedelta(hours=1)
    with moving(store, [(swept, Status.STOPPING)], at):
        move(store, other, Status.STOPPING, at=at)
        assert index_statuses(azurite, store, other.id) == ["STOPPING"]  # retired at once
    assert index_statuses(azurite, store, swept.id) == ["RUNNING"]  # written ahead, withdrawn


@pytest.mark.parametrize("users_move", [Status.STOPPING, Status.DELETING])
def test_a_user_who_moves_first_wins_and_the_index_ends_true(
    store: TableEnvironmentStore, azurite: str, users_move: Status
) -> None:
    """Between the rows written ahead and the sweep's commit, the user stops (the row written
    ahead serves their commit) or deletes (it is withdrawn); the sweep's stale commit conflicts."""
    (env,) = running_fleet(store, 1)
    list(store.index.candidates(Status.RUNNING))
    at = T0 + timedelta(hours=1)
    with moving(store, [(env, Status.STOPPING)], at):
        users = move(store, env, users_move, at=at)
        with pytest.raises(ConcurrencyConflict):
            move(store, env, Status.STOPPING, at=at)  # the sweep, on the record it had read
    assert index_statuses(azurite, store, env.id) == [users_move.value]
    assert indexed_versions(azurite, store, users_move)[env.id] == users.version
