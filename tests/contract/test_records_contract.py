"""The EnvironmentRecords contract, run against the Table Storage adapter on Azurite and against
the in-memory fake the fast service tests use: whatever a service test proves on the fake, the
real adapter does too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from shared.adapters.tables.loop import close_running_loop
from shared.domain.environment import Actor, CloudProvider, Environment, Status
from shared.domain.quota import Limits
from shared.domain.snapshots import Reason, Snapshot, SnapshotLog
from shared.errors import ConcurrencyConflict, QuotaExceeded
from shared.services.ports import Change, EnvironmentRecords, IdempotencyRecord
from tests.fakes import InMemoryRecords, InMemorySnapshotLogs
from tests.integration.test_table_store import run_together

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ROOMY = Limits(max_environments=50, max_active=50)
OWNER = "auth0|contract"
T = TypeVar("T")


@pytest.fixture(params=["memory", "tables"])
def records(request: pytest.FixtureRequest) -> Iterator[EnvironmentRecords]:
    if request.param == "memory":
        yield InMemoryRecords()
    else:
        yield request.getfixturevalue("store")


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
        "cloud_region": "local-test",
        "ports": [8000],
        "environment_variables": {"A": "ü" * 3},
        "idle_timeout_minutes": 30,
        "last_accessed_at": T0,
        "created_at": T0,
        "updated_at": T0,
        "operation": "op-1",
    }
    return Environment(**{**values, **fields})


def change(at: datetime = T0, reason: str = "test") -> Change:
    return Change(Actor.SYSTEM, reason, at)


def move(
    records: EnvironmentRecords, env: Environment, status: Status, limits: Limits | None = None
) -> Environment:
    updated = env.model_copy(update={"status": status})
    return records.save(
        env, updated, change(env.updated_at + timedelta(seconds=1), f"to {status.value}"), limits
    )


def test_a_created_record_reads_back_whole_with_an_etag(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    assert created.version == 1 and created.etag
    assert records.get(OWNER, created.id) == created
    assert records.get(OWNER, "env-0000000000000000") is None
    assert records.get("someone-else", created.id) is None


def on_a_loop(read: Callable[[], Awaitable[T]]) -> T:
    """Run an async read on a loop of its own, closing what it opened there (as a host does)."""

    async def run() -> T:
        try:
            return await read()
        finally:
            await close_running_loop()

    return asyncio.run(run())


def test_the_async_read_is_the_point_read(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    deleted = records.create(make_env(), change(), ROOMY)
    for status in (Status.RUNNING, Status.DELETING, Status.DELETED):
        deleted = move(records, deleted, status)
    read = on_a_loop(lambda: records.get_async(OWNER, created.id))
    assert read == created == records.get(OWNER, created.id)
    assert on_a_loop(lambda: records.get_async(OWNER, deleted.id)) == deleted  # the service says 404
    assert on_a_loop(lambda: records.get_async(OWNER, "env-0000000000000000")) is None
    assert on_a_loop(lambda: records.get_async("someone-else", created.id)) is None


def test_the_async_list_is_the_list(records: EnvironmentRecords) -> None:
    late = records.create(make_env(created_at=T0 + timedelta(hours=1)), change(), ROOMY)
    gone = records.create(make_env(), change(), ROOMY)
    for status in (Status.RUNNING, Status.DELETING, Status.DELETED):
        gone = move(records, gone, status)
    records.create(make_env(owner="other"), change(), ROOMY)
    assert on_a_loop(lambda: records.list_async(OWNER)) == records.list(OWNER) == [gone, late]
    assert on_a_loop(lambda: records.list_async(OWNER, live=True)) == [late]
    assert on_a_loop(lambda: records.list_async("nobody")) == []


def test_list_is_one_owners_records_oldest_first(records: EnvironmentRecords) -> None:
    late = records.create(make_env(created_at=T0 + timedelta(hours=1)), change(), ROOMY)
    early = records.create(make_env(), change(), ROOMY)
    records.create(make_env(owner="other"), change(), ROOMY)
    assert [env.id for env in records.list(OWNER)] == [early.id, late.id]


def test_a_live_list_leaves_the_deleted_records_out(records: EnvironmentRecords) -> None:
    kept = records.create(make_env(), change(), ROOMY)
    gone = records.create(make_env(created_at=T0 + timedelta(hours=1)), change(), ROOMY)
    for status in (Status.RUNNING, Status.DELETING, Status.DELETED):
        gone = move(records, gone, status)
    assert [env.id for env in records.list(OWNER)] == [kept.id, gone.id]  # kept for usage and audit
    assert [env.id for env in records.list(OWNER, live=True)] == [kept.id]


def test_the_tables_live_list_is_filtered_by_the_service(store: Any) -> None:
    """The deleted records (kept for good) are not sent: a dashboard's list does not grow with
    every environment its owner ever deleted."""
    live = store.create(make_env(), change(), ROOMY)
    for n in range(3):
        gone = store.create(make_env(created_at=T0 + timedelta(hours=n)), change(), ROOMY)
        for status in (Status.RUNNING, Status.DELETING, Status.DELETED):
            gone = move(store, gone, status)
    sent: list[object] = []
    query = store._query

    def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for row in query(*args, **kwargs):
            sent.append(row)
            yield row

    store._query = counted  # type: ignore[method-assign]
    assert [env.id for env in store.list(OWNER, live=True)] == [live.id]
    assert len(sent) == 1


def test_restorable_gives_the_deleted_records_whose_window_is_open(records: EnvironmentRecords) -> None:
    records.create(make_env(), change(), ROOMY)  # live: not restorable
    windows = {"closed": T0 + timedelta(days=1), "open": T0 + timedelta(days=9), "none": None}
    made = {}
    for n, (name, until) in enumerate(windows.items()):
        env = records.create(make_env(created_at=T0 + timedelta(hours=n + 1)), change(), ROOMY)
        for status in (Status.RUNNING, Status.DELETING, Status.DELETED):
            env = move(records, env, status)
        made[name] = records.save(env, env.model_copy(update={"restorable_until": until}), change())
    records.create(make_env(owner="other"), change(), ROOMY)
    now = T0 + timedelta(days=2)
    assert [env.id for env in records.restorable(OWNER, now)] == [made["open"].id]
    assert records.restorable(OWNER, now)[0] == records.get(OWNER, made["open"].id)  # whole, with its ETag
    assert [env.id for env in records.restorable(OWNER, T0)] == [made["closed"].id, made["open"].id]
    assert records.restorable("other", T0) == []


def test_save_bumps_the_version_and_etag_and_stamps_the_change_time(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    later = T0 + timedelta(minutes=5)
    renamed = records.save(created, created.model_copy(update={"name": "renamed"}), change(later))
    assert (renamed.version, renamed.updated_at, renamed.name) == (2, later, "renamed")
    assert renamed.etag != created.etag
    assert records.get(OWNER, created.id) == renamed


def test_a_stale_save_conflicts_and_changes_nothing(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    first = records.save(created, created.model_copy(update={"name": "first"}), change())
    with pytest.raises(ConcurrencyConflict):
        records.save(created, created.model_copy(update={"name": "second"}), change())
    assert records.get(OWNER, created.id) == first


def test_only_lifecycle_edges_are_written(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    for target in (Status.STOPPED, Status.STOPPING, Status.DELETED, Status.STARTING):
        with pytest.raises(ValueError, match="not a lifecycle edge"):
            move(records, created, target)
    assert records.get(OWNER, created.id) == created
    with pytest.raises(ValueError):
        records.create(make_env(status=Status.RUNNING), change(), ROOMY)


def test_each_status_change_is_one_audit_event_newest_first(records: EnvironmentRecords) -> None:
    env = records.create(make_env(), change(reason="created"), ROOMY)
    env = move(records, env, Status.RUNNING)
    env = records.save(env, env.model_copy(update={"name": "renamed"}), change())  # no status change
    env = move(records, env, Status.STOPPING)
    trail = records.events(OWNER, env.id)
    assert [(e.from_status, e.to_status) for e in trail] == [
        (Status.RUNNING, Status.STOPPING),
        (Status.CREATING, Status.RUNNING),
        (None, Status.CREATING),
    ]
    assert trail[-1].reason == "created"
    assert records.events(OWNER, env.id, limit=1) == trail[:1]
    # Each event carries the record's version it came with: the trail's order, and its pages'.
    assert [e.version for e in trail] == [4, 2, 1]  # version 3 (the rename) wrote no event
    assert records.events(OWNER, env.id, before=4) == trail[1:]
    assert records.events(OWNER, env.id, before=3) == trail[1:]  # a version with no event
    assert records.events(OWNER, env.id, limit=1, before=2) == trail[2:]
    assert records.events(OWNER, env.id, before=1) == []
    other = records.create(make_env(), change(), ROOMY)
    assert len(records.events(OWNER, other.id)) == 1
    assert records.events(OWNER, other.id, before=2) == records.events(OWNER, other.id)


def test_an_idempotency_key_binds_once(records: EnvironmentRecords) -> None:
    key = IdempotencyRecord("key-1", "hash", "env-0000000000000001", T0)
    first = records.create(make_env(id="env-0000000000000001"), change(), ROOMY, key)
    assert records.idempotency(OWNER, "key-1") == key
    assert records.idempotency("other", "key-1") is None
    with pytest.raises(ConcurrencyConflict):
        records.create(make_env(), change(), ROOMY, IdempotencyRecord("key-1", "h2", "env-x", T0))
    assert [env.id for env in records.list(OWNER)] == [first.id]


def test_an_id_is_created_once(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    with pytest.raises(ConcurrencyConflict):
        records.create(make_env(id=created.id, name="again"), change(), ROOMY)
    assert records.get(OWNER, created.id) == created


def test_quota_refuses_growth_only_and_writes_nothing(records: EnvironmentRecords) -> None:
    tight = Limits(max_environments=2, max_active=1)
    first = records.create(make_env(), change(), tight)
    with pytest.raises(QuotaExceeded):
        records.create(make_env(), change(), tight)  # a second active one
    assert [env.id for env in records.list(OWNER)] == [first.id]
    running = move(records, first, Status.RUNNING, tight)
    stopping = move(records, running, Status.STOPPING, Limits(0, 0))  # shrinking is never refused
    stopped = move(records, stopping, Status.STOPPED, tight)
    records.create(make_env(), change(), tight)
    with pytest.raises(QuotaExceeded):
        move(records, stopped, Status.STARTING, tight)
    assert records.get(OWNER, stopped.id) == stopped


def test_quota_holds_under_concurrent_creates(records: EnvironmentRecords) -> None:
    limits = Limits(max_environments=3, max_active=50)
    outcomes = run_together(8, lambda _: records.create(make_env(), change(), limits))
    made = [outcome for outcome in outcomes if isinstance(outcome, Environment)]
    assert len(made) == 3
    assert all(isinstance(o, QuotaExceeded | Environment) for o in outcomes), outcomes
    assert len(records.list(OWNER)) == 3


def test_racing_saves_of_one_record_make_one_change(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    outcomes = run_together(
        6, lambda n: records.save(created, created.model_copy(update={"name": f"n{n}"}), change())
    )
    winners = [outcome for outcome in outcomes if isinstance(outcome, Environment)]
    assert len(winners) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if o not in winners)
    assert records.get(OWNER, created.id) == winners[0]


def test_touch_only_moves_forward_and_outdates_earlier_reads(records: EnvironmentRecords) -> None:
    created = records.create(make_env(), change(), ROOMY)
    records.touch(OWNER, created.id, T0 + timedelta(minutes=10))
    records.touch(OWNER, created.id, T0 + timedelta(minutes=5))  # late and out of order: ignored
    touched = records.get(OWNER, created.id)
    assert touched is not None
    assert touched.last_accessed_at == T0 + timedelta(minutes=10)
    assert touched.model_copy(update={"last_accessed_at": T0, "etag": created.etag}) == created
    with pytest.raises(ConcurrencyConflict):
        records.save(created, created.model_copy(update={"name": "stale"}), change())
    records.touch(OWNER, "env-0000000000000000", T0)  # an unknown id is nothing to touch


# --- audited changes and the snapshot log (issue 11) -----------------------------------------------


def test_an_audited_change_that_keeps_the_status_is_in_the_trail(records: EnvironmentRecords) -> None:
    env = records.create(make_env(), change(), ROOMY)
    quiet = records.save(env, env.model_copy(update={"name": "renamed"}), change(reason="renamed"))
    noted = records.save(
        quiet,
        quiet.model_copy(update={"restore_snapshot": "aaaaaaaa"}),
        Change(Actor.USER, "the next start restores snapshot aaaaaaaa", T0, audited=True),
    )
    trail = records.events(OWNER, env.id)
    assert [(e.from_status, e.to_status, e.reason) for e in trail] == [
        (Status.CREATING, Status.CREATING, "the next start restores snapshot aaaaaaaa"),
        (None, Status.CREATING, "test"),
    ]
    assert records.get(OWNER, env.id) == noted and noted.restore_snapshot == "aaaaaaaa"


@pytest.fixture(params=["memory", "tables"])
def logs(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemorySnapshotLogs()
    else:
        yield request.getfixturevalue("store").snapshot_logs


def test_a_snapshot_log_is_written_only_over_the_one_that_was_read(logs: Any) -> None:
    env_id = f"env-{uuid.uuid4().hex[:16]}"
    empty = logs.snapshot_log(OWNER, env_id)
    assert empty == SnapshotLog() and empty.etag is None
    snap = Snapshot(id="aaaaaaaa", taken_at=T0, reason=Reason.MANUAL, files=3, bytes_added=1024)
    first = logs.save_snapshot_log(OWNER, env_id, empty.model_copy(update={"snapshots": [snap]}))
    with pytest.raises(ConcurrencyConflict):  # created meanwhile by someone else
        logs.save_snapshot_log(OWNER, env_id, empty)
    second = logs.save_snapshot_log(OWNER, env_id, first.model_copy(update={"pruned_at": T0}))
    with pytest.raises(ConcurrencyConflict):  # written since `first` was read
        logs.save_snapshot_log(OWNER, env_id, first)
    stored = logs.snapshot_log(OWNER, env_id)
    assert stored.snapshots == [snap] and stored.pruned_at == T0 and stored.etag == second.etag
    assert logs.snapshot_log("someone-else", env_id) == SnapshotLog()  # per owner


def test_a_long_snapshot_log_round_trips(logs: Any) -> None:
    env_id = f"env-{uuid.uuid4().hex[:16]}"
    many = [
        Snapshot(
            id=f"{n:08x}", taken_at=T0 - timedelta(minutes=n), reason=Reason.INTERVAL, files=n, bytes_added=n
        )
        for n in range(120)
    ]
    logs.save_snapshot_log(OWNER, env_id, SnapshotLog(snapshots=many))
    assert logs.snapshot_log(OWNER, env_id).snapshots == many
