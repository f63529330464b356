"""The ResourceSamples contract, on the Table Storage adapter (Azurite) and on the in-memory fake:
a minute's sample replaces the minute's earlier one, a series reads from a minute on, expiry
deletes whole hours before the cutoff's and one environment's series is its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.tables.records import TableEnvironmentStore
from shared.domain.samples import Point, Sample
from shared.services.ports import ResourceSamples
from tests.fakes import InMemoryResourceSamples

T0 = datetime(2026, 12, 2, 23, 58, 41, tzinfo=UTC)  # two minutes before midnight: hour and day roll over


@pytest.fixture(params=["memory", "tables"])
def samples(request: pytest.FixtureRequest) -> Iterator[ResourceSamples]:
    if request.param == "memory":
        yield InMemoryResourceSamples()
    else:
        store: TableEnvironmentStore = request.getfixturevalue("store")
        yield store.samples


def env_id() -> str:
    return f"env-{uuid.uuid4().hex[:16]}"


def point(at: datetime, cpu: float, disk: float | None = 10.0) -> Point:
    return Point(at=at, sample=Sample(cpu_percent=cpu, memory_mb=512.5, disk_mb=disk))


def test_a_series_across_an_hour_and_a_day(samples: ResourceSamples) -> None:
    env = env_id()
    for minute in range(5):  # 23:58, 23:59, 00:00, 00:01, 00:02
        samples.add(
            env, point(T0 + timedelta(minutes=minute), cpu=float(minute), disk=None if minute else 1.5)
        )
    got = samples.series(env, T0 - timedelta(hours=1))
    assert [p.at for p in got] == [
        (T0 + timedelta(minutes=m)).replace(second=0) for m in range(5)
    ]  # stamped to the minute, oldest first
    assert [p.sample.cpu_percent for p in got] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert got[0].sample == Sample(cpu_percent=0.0, memory_mb=512.5, disk_mb=1.5)
    assert got[1].sample.disk_mb is None  # not measured stays not measured
    # From a minute on, that minute included.
    since = [p.at.minute for p in samples.series(env, T0 + timedelta(minutes=2, seconds=30))]  # 00:01:11
    assert since == [1, 2]


def test_a_second_sample_in_a_minute_replaces_the_first(samples: ResourceSamples) -> None:
    env = env_id()
    samples.add(env, point(T0, cpu=10))
    samples.add(env, point(T0 + timedelta(seconds=5), cpu=20))
    assert [p.sample.cpu_percent for p in samples.series(env, T0 - timedelta(minutes=5))] == [20.0]


def test_expiry_deletes_whole_hours_before_the_cutoffs(samples: ResourceSamples) -> None:
    first, second = env_id(), env_id()
    for env in (first, second):
        for hours_ago in (30, 26, 25, 1):
            samples.add(env, point(T0 - timedelta(hours=hours_ago), cpu=float(hours_ago)))
    # Cutoff 22:28:41 on Dec 1: its hour (the sample 25 h ago, 22:58) is kept whole; the samples
    # 26 h (21:58) and 30 h ago go, for every environment.
    deleted = samples.expire(T0 - timedelta(hours=25, minutes=30))
    assert {p.sample.cpu_percent for p in samples.series(first, T0 - timedelta(hours=48))} == {25.0, 1.0}
    assert {p.sample.cpu_percent for p in samples.series(second, T0 - timedelta(hours=48))} == {25.0, 1.0}
    assert deleted == 4
    assert samples.expire(T0 - timedelta(hours=25, minutes=30)) == 0  # nothing more to do


def test_a_series_is_its_environments_own_and_drop_forgets_it(samples: ResourceSamples) -> None:
    mine, theirs = env_id(), env_id()
    samples.add(mine, point(T0, cpu=1))
    samples.add(theirs, point(T0, cpu=2))
    assert [p.sample.cpu_percent for p in samples.series(mine, T0 - timedelta(hours=1))] == [1.0]
    samples.drop(mine)
    samples.drop(mine)  # gone is done
    assert samples.series(mine, T0 - timedelta(hours=1)) == []
    assert [p.sample.cpu_percent for p in samples.series(theirs, T0 - timedelta(hours=1))] == [2.0]
