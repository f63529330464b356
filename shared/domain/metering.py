"""Metering: what an environment used, month by month, accrued from its lifecycle. Pure.

Compute counts while the status is STARTING, RUNNING or STOPPING (the container group exists and
bills), at the record's cpu_cores and memory_gb; storage counts the workspace's quota from create
until the record is DELETED (a retired environment's snapshots until its restore window closes).
Each status change (and each resize) accrues the time since `metered_at` into the record itself,
in the same write as the change, so nothing is counted twice and a lost write loses nothing (it
is redone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.environment import Environment, Status
from shared.domain.meter import MonthUsage
from shared.domain.prices import HOURS_PER_MONTH, Prices, prices_for

BILLED = frozenset({Status.STARTING, Status.RUNNING, Status.STOPPING})


def month_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def _next_month(moment: datetime) -> datetime:
    first = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def _months(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) cut at month boundaries."""
    pieces = []
    while start < end:
        cut = min(end, _next_month(start))
        pieces.append((month_of(start.astimezone(UTC)), start, cut))
        start = cut
    return pieces


def _use(env: Environment, seconds: float, prices: Prices) -> MonthUsage:
    """What `env` as it stands used in `seconds`: compute while billed, storage while the
    workspace exists (a retired environment's snapshots are kept: they count too)."""
    compute = seconds if env.status in BILLED else 0.0
    stored = seconds if env.status is not Status.DELETED or env.restorable_until else 0.0
    vcpu, gb = compute * env.cpu_cores, compute * env.memory_gb
    storage = env.storage_gb * stored / 3600
    cost = vcpu * prices.vcpu_second + gb * prices.gb_second
    cost += storage * prices.storage_gb_month / HOURS_PER_MONTH
    return MonthUsage(
        compute_seconds=compute, vcpu_seconds=vcpu, gb_seconds=gb, storage_gb_hours=storage, cost=cost
    )


def accrued(env: Environment, until: datetime) -> dict[str, MonthUsage]:
    """`env`'s meter with the time from its `metered_at` (else `created_at`) to `until` added,
    as `env` stands over that time (its status and size)."""
    meter = dict(env.meter)
    prices = prices_for(env.cloud_region)
    start = env.metered_at or env.created_at
    for month, begin, end in _months(start, until):
        spent = _use(env, (end - begin).total_seconds(), prices)
        meter[month] = meter.get(month, MonthUsage()).plus(spent)
    return meter


def rates_change(before: Environment, after: Environment) -> bool:
    """Whether a write changes what the record accrues per second: its status or its size."""
    return (before.status, before.cpu_cores, before.memory_gb, before.storage_gb) != (
        after.status,
        after.cpu_cores,
        after.memory_gb,
        after.storage_gb,
    )


def metered(before: Environment, after: Environment, at: datetime) -> Environment:
    """`after` (the record a status change is about to write) with `before`'s time accrued."""
    return after.model_copy(update={"meter": accrued(before, at), "metered_at": at})


def to_date(env: Environment, now: datetime) -> dict[str, MonthUsage]:
    """The meter as it would stand now, what has run since the last change included (for a
    retired environment, its snapshots' storage until the restore window closed)."""
    if env.status is Status.DELETED:
        if env.restorable_until is None:
            return dict(env.meter)
        now = min(now, env.restorable_until)
    return accrued(env, now)


def total(meter: dict[str, MonthUsage]) -> MonthUsage:
    summed = MonthUsage()
    for usage in meter.values():
        summed = summed.plus(usage)
    return summed
