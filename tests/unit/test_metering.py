"""Metering over a scripted clock: exact seconds and cents, month boundaries, and that a status
change accrues exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.budget import Spend
from shared.domain.environment import CloudProvider, Environment, Status
from shared.domain.metering import metered, month_of, to_date, total
from shared.domain.prices import prices_for

T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # an hour before December


def env(status: Status, at: datetime, **fields: object) -> Environment:
    values: dict[str, object] = {
        "id": "env-00000000000000aa",
        "owner": "alice",
        "name": "metered",
        "status": status,
        "template": "node",
        "size": "small",
        "cpu_cores": 1.0,
        "memory_gb": 2.0,
        "storage_gb": 20,
        "cloud_provider": CloudProvider.AZURE,
        "cloud_region": "eastus",
        "idle_timeout_minutes": 30,
        "last_accessed_at": at,
        "created_at": T0,
        "updated_at": at,
    }
    values.update(fields)
    return Environment.model_validate(values)


def move(record: Environment, to: Status, at: datetime) -> Environment:
    return metered(record, record.model_copy(update={"status": to}), at)


def test_a_session_across_a_month_boundary_in_exact_seconds_and_cents() -> None:
    creating = env(Status.CREATING, T0)
    running = move(creating, Status.RUNNING, T0 + timedelta(seconds=90))  # 90 s creating: not billed
    stopping = move(running, Status.STOPPING, T0 + timedelta(hours=2))  # 1 h in Nov, 58.5 min in Dec
    stopped = move(stopping, Status.STOPPED, T0 + timedelta(hours=2, seconds=30))
    now = T0 + timedelta(hours=5)
    meter = to_date(stopped, now)
    november, december = meter["2026-11"], meter["2026-12"]
    # CREATING is not billed (the group is being made); RUNNING and STOPPING are.
    assert november.compute_seconds == 3600 - 90
    assert december.compute_seconds == 3600 + 30
    assert november.vcpu_seconds == 3510 and november.gb_seconds == 7020
    # Storage: 20 GB from creation, 1 h in November and 4 h in December.
    assert november.storage_gb_hours == pytest.approx(20.0)
    assert december.storage_gb_hours == pytest.approx(80.0)
    p = prices_for("eastus")
    expected_dec = 3630 * p.vcpu_second + 7260 * p.gb_second + 80 * p.storage_gb_month / 730
    assert december.cost == pytest.approx(expected_dec)
    # 3,630 vCPU-s, 7,260 GB-s and 80 GB-hours at the eastus list prices: 6.65 cents
    assert round(december.cost * 100, 2) == 6.65
    assert total(meter).compute_seconds == 7140
    assert month_of(now) == "2026-12"


def test_reading_does_not_count_twice_and_a_later_change_continues_from_the_last() -> None:
    running = move(env(Status.STARTING, T0), Status.RUNNING, T0)
    later = T0 + timedelta(minutes=10)
    assert to_date(running, later) == to_date(running, later)  # reads write nothing
    stopped = move(move(running, Status.STOPPING, later), Status.STOPPED, later)
    assert total(to_date(stopped, later + timedelta(hours=1))).compute_seconds == 600


def test_a_deleted_environment_stops_counting_and_a_retired_one_counts_storage_until_its_window() -> None:
    deleting = env(Status.DELETING, T0)
    deleted = move(deleting, Status.DELETED, T0 + timedelta(hours=1))
    far = T0 + timedelta(days=30)
    assert total(to_date(deleted, far)).storage_gb_hours == pytest.approx(20.0)
    retired = deleted.model_copy(update={"restorable_until": T0 + timedelta(hours=3)})
    kept = total(to_date(retired, far))
    assert kept.storage_gb_hours == pytest.approx(60.0) and kept.compute_seconds == 0  # DELETING bills none


@pytest.mark.parametrize(
    ("spent", "budget", "share", "allows"),
    [
        (0.0, None, 0.0, True),  # no budget: anything goes
        (5.0, 10.0, 0.5, True),
        (9.95, 10.0, 0.995, False),  # the next hour (0.10) would pass it
        (0.0, 0.0, 0.0, False),  # a budget of 0: nothing that costs, even before spending
        (0.01, 0.0, 1.0, False),  # ... and anything spent is all of it (the sweep stops at 100%)
    ],
)
def test_a_months_spend_against_its_budget(
    spent: float, budget: float | None, share: float, allows: bool
) -> None:
    spend = Spend("2026-12", spent, budget)
    assert spend.share == pytest.approx(share)
    assert spend.allows(0.10) is allows
    assert spend.allows(0.0) is (budget is None or spent <= budget)  # what costs nothing is never refused
