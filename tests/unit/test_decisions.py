"""The timers' decisions, one row per case, against a fixed clock (the style of Coder's autobuild
tests): what the idle sweep, retention and the reconciler do with one record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import decisions
from shared.domain.decisions import ReconcilePolicy, Recovery
from shared.domain.environment import CloudProvider, Environment, Policy, Status
from shared.domain.resources import ComputeState

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = Policy(max_session_hours=12, retention_days=30)
RECONCILE = ReconcilePolicy(stuck_after=timedelta(minutes=25), orphan_grace=timedelta(minutes=30))


def record(status: Status = Status.RUNNING, **fields: Any) -> Environment:
    """A record last touched `ago` before NOW, unless fields say otherwise."""
    ago = fields.pop("ago", timedelta(minutes=1))
    values: dict[str, Any] = {
        "id": "env-0123456789abcdef",
        "owner": "alice",
        "name": "api",
        "status": status,
        "template": "node",
        "size": "small",
        "cpu_cores": 1,
        "memory_gb": 2,
        "storage_gb": 20,
        "cloud_provider": CloudProvider.LOCAL,
        "cloud_region": "local-test",
        "idle_timeout_minutes": 30,
        "last_accessed_at": NOW - ago,
        "created_at": NOW - timedelta(days=90),
        "updated_at": NOW - ago,
        "started_at": NOW - ago if status is Status.RUNNING else None,
        "stopped_at": NOW - ago if status is Status.STOPPED else None,
        "operation": "env-0123456789abcdef-create-1",
    }
    return Environment(**{**values, **fields})


MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("case", "env", "reason"),
    [
        ("active a minute ago", record(ago=MINUTE), None),
        ("idle just under the timeout", record(ago=29 * MINUTE), None),
        ("idle exactly the timeout", record(ago=30 * MINUTE), "idle for 30 minutes"),
        ("idle past a longer own timeout", record(ago=90 * MINUTE, idle_timeout_minutes=120), None),
        (
            "idle past its own timeout",
            record(ago=121 * MINUTE, idle_timeout_minutes=120),
            "idle for 120 minutes",
        ),
        (
            "active but running past the session limit",
            record(started_at=NOW - 12 * HOUR),
            "session limit of 12 hours reached",
        ),
        ("active, session just under the limit", record(started_at=NOW - 11 * HOUR), None),
        ("both: the session limit is named", record(ago=13 * HOUR), "session limit of 12 hours reached"),
        ("stopped", record(Status.STOPPED, ago=DAY), None),
        ("starting", record(Status.STARTING, ago=DAY), None),
        ("error", record(Status.ERROR, ago=DAY), None),
    ],
)
def test_idle_sweep(case: str, env: Environment, reason: str | None) -> None:
    assert decisions.stop_reason(env, NOW, POLICY) == reason, case


@pytest.mark.parametrize(
    ("case", "env", "reason"),
    [
        ("stopped yesterday", record(Status.STOPPED, ago=DAY), None),
        ("stopped 29 days ago", record(Status.STOPPED, ago=29 * DAY), None),
        ("stopped 30 days ago", record(Status.STOPPED, ago=30 * DAY), "stopped and untouched for 30 days"),
        ("stopped long ago but kept", record(Status.STOPPED, ago=90 * DAY, keep=True), None),
        (
            "stopped long ago, touched since",
            record(Status.STOPPED, ago=90 * DAY, last_accessed_at=NOW - DAY),
            None,
        ),
        ("running for weeks", record(ago=60 * DAY), None),
        ("error for weeks", record(Status.ERROR, ago=60 * DAY), None),
    ],
)
def test_retention(case: str, env: Environment, reason: str | None) -> None:
    assert decisions.retire_reason(env, NOW, POLICY) == reason, case


@pytest.mark.parametrize(
    ("case", "env", "due"),
    [
        ("window open", record(Status.DELETED, snapshot="s1", restorable_until=NOW + DAY), False),
        ("window closes now", record(Status.DELETED, snapshot="s1", restorable_until=NOW), True),
        ("window closed", record(Status.DELETED, snapshot="s1", restorable_until=NOW - DAY), True),
        ("already purged", record(Status.DELETED, restorable_until=NOW - DAY), False),
        ("a user's delete (no window)", record(Status.DELETED), False),
        ("gone", None, False),
    ],
)
def test_purge(case: str, env: Environment | None, due: bool) -> None:
    assert decisions.purge_due(env, NOW) is due, case


@pytest.mark.parametrize(
    ("case", "state", "detail", "reason"),
    [
        ("running", ComputeState.RUNNING, None, None),
        ("still coming up", ComputeState.PENDING, None, None),
        ("gone", ComputeState.ABSENT, None, "stopped because its compute was gone"),
        (
            "stopped in the portal",
            ComputeState.STOPPED,
            None,
            "stopped because its compute was stopped outside Dev8",
        ),
        ("failed", ComputeState.FAILED, "OOMKilled", "stopped because its compute failed: OOMKilled"),
        ("failed, no detail", ComputeState.FAILED, None, "stopped because its compute failed"),
    ],
)
def test_running_record_and_its_compute(
    case: str, state: ComputeState, detail: str | None, reason: str | None
) -> None:
    assert decisions.lost_compute_reason(state, detail) == reason, case


@pytest.mark.parametrize(
    ("case", "env", "stuck", "then"),
    [
        ("creating for a minute", record(Status.CREATING, ago=MINUTE), False, None),
        ("creating past the deadline", record(Status.CREATING, ago=HOUR), True, Recovery.REDRIVE),
        (
            "stopping, re-driven once already",
            record(Status.STOPPING, ago=HOUR, redrives=1),
            True,
            Recovery.FAIL,
        ),
        ("deleting just under the deadline", record(Status.DELETING, ago=24 * MINUTE), False, None),
        ("running for hours (settled)", record(ago=5 * HOUR), False, None),
        ("error for hours (settled)", record(Status.ERROR, ago=5 * HOUR), False, None),
        ("transitional with no operation", record(Status.STARTING, ago=HOUR, operation=None), False, None),
    ],
)
def test_stuck_operations(case: str, env: Environment, stuck: bool, then: Recovery | None) -> None:
    assert decisions.stuck(env, NOW, RECONCILE) is stuck, case
    if then is not None:
        assert decisions.recovery(env, RECONCILE) is then, case


def test_an_interrupted_operation_says_what_was_interrupted() -> None:
    assert decisions.interrupted_reason(record(Status.STOPPING)) == (
        "stopping was interrupted and could not be completed; try again"
    )


@pytest.mark.parametrize(
    ("case", "env", "first_seen", "orphaned", "due"),
    [
        ("no record", None, NOW - HOUR, True, True),
        ("deleted record, just seen", record(Status.DELETED), NOW, True, False),
        ("deleted record, inside the grace", record(Status.DELETED), NOW - 29 * MINUTE, True, False),
        ("deleted record, grace over", record(Status.DELETED), NOW - 30 * MINUTE, True, True),
        ("live record", record(), NOW - HOUR, False, True),
    ],
)
def test_orphaned_compute(
    case: str, env: Environment | None, first_seen: datetime, orphaned: bool, due: bool
) -> None:
    assert decisions.orphaned(env) is orphaned, case
    assert decisions.orphan_due(first_seen, NOW, RECONCILE) is due, case


@pytest.mark.parametrize(
    ("case", "env", "state", "stop"),
    [
        ("error a while, compute running", record(Status.ERROR, ago=HOUR), ComputeState.RUNNING, True),
        ("error a while, compute pending", record(Status.ERROR, ago=HOUR), ComputeState.PENDING, True),
        ("error a while, compute stopped", record(Status.ERROR, ago=HOUR), ComputeState.STOPPED, False),
        (
            "error just now (a start may follow)",
            record(Status.ERROR, ago=MINUTE),
            ComputeState.RUNNING,
            False,
        ),
        ("started again meanwhile", record(Status.STARTING, ago=HOUR), ComputeState.RUNNING, False),
        ("gone meanwhile", None, ComputeState.RUNNING, False),
    ],
)
def test_compute_under_an_error_record(
    case: str, env: Environment | None, state: ComputeState, stop: bool
) -> None:
    assert decisions.stop_error_compute(env, state, NOW, RECONCILE) is stop, case
