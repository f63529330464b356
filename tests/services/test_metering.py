"""Metering through the service, over the in-memory records fake and a scripted clock: every status
change accrues once, in the record's own write; /usage rows include deleted environments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain import metering
from shared.domain.lifecycle import Command
from shared.domain.prices import prices_for
from tests.fakes import FixedClock, InMemoryRecords
from tests.services.test_environments import make_service, request, run

T0 = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # half an hour before December


def test_a_month_of_use_in_exact_seconds_and_cents_across_the_boundary() -> None:
    store, clock = InMemoryRecords(), FixedClock(T0)
    service = make_service(store, clock)
    env = service.create("alice", request(size="small"), None).environment  # CREATING: not billed
    clock.advance(seconds=60)
    run(service, "alice", env.id, metering.Status.RUNNING)  # RUNNING from 23:31
    clock.advance(hours=1)  # 29 min in November, 31 in December
    service.command("alice", env.id, Command.STOP)
    clock.advance(seconds=20)
    run(service, "alice", env.id, metering.Status.STOPPED)
    clock.advance(hours=2)
    service.command("alice", env.id, Command.DELETE)
    clock.advance(seconds=10)
    run(service, "alice", env.id, metering.Status.DELETED)
    clock.advance(days=3)  # deleted: nothing more

    [(nov_env, nov)] = service.usage("alice", "2026-11")
    [(dec_env, dec)] = service.usage("alice", "2026-12")
    assert nov_env.id == dec_env.id == env.id
    assert nov.compute_seconds == 29 * 60  # 23:31-24:00 RUNNING
    assert dec.compute_seconds == 31 * 60 + 20  # then 31 min RUNNING and 20 s STOPPING
    assert nov.storage_gb_hours == pytest.approx(20 * 0.5)  # 20 GB from 23:30
    assert dec.storage_gb_hours == pytest.approx(20 * (31 * 60 + 20 + 7200 + 10) / 3600)
    p = prices_for(env.cloud_region)
    compute = 1880 * 1 * p.vcpu_second + 1880 * 2 * p.gb_second
    cents = 100 * (compute + dec.storage_gb_hours * p.storage_gb_month / 730)
    assert round(dec.cost * 100, 4) == round(cents, 4)
    # 1,880 vCPU-s, 3,760 GB-s and 50.5 GB-hours at the eastus list prices: 3.52 cents
    assert round(dec.cost * 100, 2) == 3.52
    assert service.usage("alice", "2026-10") == []
    assert service.usage("bob", "2026-12") == []


def test_a_lost_write_is_redone_not_counted_twice() -> None:
    store, clock = InMemoryRecords(), FixedClock(T0)
    service = make_service(store, clock)
    env = service.create("alice", request(), None).environment
    run(service, "alice", env.id, metering.Status.RUNNING)
    clock.advance(minutes=10)
    service.command("alice", env.id, Command.STOP)
    stopping = service.get("alice", env.id)
    run(service, "alice", env.id, metering.Status.STOPPED)
    # The orchestration's settle runs again (a replayed activity): nothing changes, nothing accrues.
    service.settle("alice", env.id, stopping.operation or "", True, "stopped")
    clock.advance(minutes=10)
    used = metering.total(metering.to_date(service.get("alice", env.id), clock()))
    assert used.compute_seconds == 10 * 60  # RUNNING only: stopped at once, then 10 min STOPPED
