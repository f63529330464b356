"""WrittenRecords: the record a process last wrote, recalled only for the same operation, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.environment import CloudProvider, Environment, Status
from shared.services.written import WrittenRecords

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def record(
    env_id: str, operation: str | None = "op-1", etag: str | None = "W/1", owner: str = "ann"
) -> Environment:
    return Environment(
        id=env_id,
        owner=owner,
        name="n",
        status=Status.CREATING,
        template="node",
        size="small",
        cpu_cores=1,
        memory_gb=2,
        storage_gb=20,
        cloud_provider=CloudProvider.LOCAL,
        cloud_region="local",
        idle_timeout_minutes=30,
        last_accessed_at=T0,
        created_at=T0,
        updated_at=T0,
        operation=operation,
        etag=etag,
    )


def test_the_last_write_is_recalled_for_its_own_operation_and_owner_only():
    written = WrittenRecords()
    written.remember(record("env-a", etag="W/1"))
    written.remember(record("env-a", etag="W/2"))
    assert written.recall("ann", "env-a", "op-1").etag == "W/2"
    assert written.recall("ann", "env-a", "op-2") is None  # another operation's step reads
    assert written.recall("bob", "env-a", "op-1") is None
    written.remember(record("env-a", operation="op-2", etag="W/3"))
    assert written.recall("ann", "env-a", "op-1") is None  # superseded here: op-1 reads afresh


def test_records_without_an_etag_or_operation_are_not_remembered():
    written = WrittenRecords()
    written.remember(record("env-a", etag=None))
    written.remember(record("env-b", operation=None))
    assert written.recall("ann", "env-a", "op-1") is None


def test_the_oldest_are_forgotten_first():
    written = WrittenRecords(limit=3)
    for name in ("env-a", "env-b", "env-c"):
        written.remember(record(name))
    written.remember(record("env-a", etag="W/2"))  # written again: the newest
    written.remember(record("env-d"))
    assert written.recall("ann", "env-b", "op-1") is None
    assert [written.recall("ann", name, "op-1") is not None for name in ("env-a", "env-c", "env-d")] == [
        True
    ] * 3
