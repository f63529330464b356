"""Resizing through the service, over the in-memory records fake and a fixed clock: a stopped
environment takes the new size at once (metered from then), a running one only with a restart,
which applies it as the start is accepted; storage only grows; the backend's limits and the
budget are checked before anything is written; the audit trail says what changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from shared.domain import metering
from shared.domain.environment import CloudProvider, Status
from shared.domain.lifecycle import Command
from shared.domain.operation import Kind, Operation
from shared.domain.placement import Placement
from shared.domain.requests import UpdateEnvironmentRequest
from shared.errors import BudgetExceeded, InvalidState, ValidationFailed
from shared.services.environments import EnvironmentService
from shared.services.resizing import RESTART_REASON, Resizing
from shared.wiring import aci_placement
from tests.fakes import FixedClock, InMemoryRecords
from tests.services.test_environments import make_settings, request, run

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def world(placement: Placement | None = None, **settings: object):
    store, clock = InMemoryRecords(), FixedClock(T0)
    service = EnvironmentService(
        store, make_settings(**settings), clock, placement or Placement(CloudProvider.LOCAL, "local-test")
    )
    return service, Resizing(service, clock), clock


def running(service: EnvironmentService, size: str = "small") -> str:
    env = service.create("alice", request(size=size)).environment
    run(service, "alice", env.id, Status.RUNNING)
    return env.id


def stopped(service: EnvironmentService, size: str = "small") -> str:
    env_id = running(service, size)
    service.command("alice", env_id, Command.STOP)
    run(service, "alice", env_id, Status.STOPPED)
    return env_id


def patch(**fields: object) -> UpdateEnvironmentRequest:
    return UpdateEnvironmentRequest.model_validate(fields)


def test_a_stopped_environment_takes_the_new_size_at_once_metered_from_then() -> None:
    service, resizing, clock = world()
    env_id = stopped(service)  # small: 1 CPU, 2 GB, 20 GB
    clock.advance(hours=1)
    at_resize = metering.to_date(service.get("alice", env_id), clock())["2026-12"].storage_gb_hours
    result = resizing.resize("alice", env_id, patch(size="large", name="bigger"))
    env = result.environment
    assert not result.accepted and env.status is Status.STOPPED
    assert (env.size, env.cpu_cores, env.memory_gb, env.storage_gb, env.name) == (
        "large",
        4,
        8,
        100,
        "bigger",
    )
    assert env.pending_size is None
    (note, *_) = service.events("alice", env_id)
    assert (note.from_status, note.to_status) == (Status.STOPPED, Status.STOPPED)
    assert note.reason == "resize to large (4 CPU, 8 GB, 100 GB storage) at the next start"
    # The hour stopped was accrued at 20 GB by the resize's own write; from then on, 100 GB.
    assert env.meter["2026-12"].storage_gb_hours == pytest.approx(at_resize)
    clock.advance(hours=1)
    used = metering.to_date(service.get("alice", env_id), clock())["2026-12"]
    assert used.storage_gb_hours == pytest.approx(at_resize + 100 * 1)


def test_explicit_values_change_only_what_they_name_and_storage_only_grows() -> None:
    service, resizing, _ = world()
    env_id = stopped(service, "medium")  # 2 CPU, 4 GB, 50 GB
    env = resizing.resize("alice", env_id, patch(cpu_cores=4.0)).environment
    assert (env.size, env.cpu_cores, env.memory_gb, env.storage_gb) == ("custom", 4, 4, 50)
    env = resizing.resize("alice", env_id, patch(memory_gb=8.0, storage_gb=100)).environment
    assert (env.size, env.cpu_cores, env.memory_gb, env.storage_gb) == ("large", 4, 8, 100)  # a preset's
    # A smaller preset: its CPU and memory, today's storage.
    env = resizing.resize("alice", env_id, patch(size="small")).environment
    assert (env.size, env.cpu_cores, env.memory_gb, env.storage_gb) == ("custom", 1, 2, 100)
    with pytest.raises(ValidationFailed, match="storage can only grow") as refused:
        resizing.resize("alice", env_id, patch(storage_gb=50))
    assert refused.value.details == [{"field": "storage_gb", "message": "at least 100 (today's)"}]
    assert service.get("alice", env_id).storage_gb == 100


def test_the_backends_limits_bounds_and_the_budget_are_checked_before_anything_is_written() -> None:
    service, resizing, _ = world(aci_placement("eastus"), monthly_budget_per_user=0.2)
    env_id = stopped(service)
    before = service.get("alice", env_id)
    with pytest.raises(ValidationFailed, match="not offered"):
        resizing.resize("alice", env_id, patch(size="xlarge"))  # 8 CPU: more than a container group
    with pytest.raises(ValidationFailed, match="cannot run"):
        resizing.resize("alice", env_id, patch(cpu_cores=1.25))  # not a multiple of 0.1
    with pytest.raises(BudgetExceeded):
        resizing.resize("alice", env_id, patch(size="large"))  # an hour of large: about 0.25 USD
    with pytest.raises(BudgetExceeded):
        resizing.resize("alice", env_id, patch(size="medium"), budget=0.05)  # the token's own budget wins
    assert service.get("alice", env_id) == before
    assert resizing.resize("alice", env_id, patch(size="medium")).environment.size == "medium"


def test_running_needs_a_restart_which_applies_the_size_as_it_starts_again() -> None:
    service, resizing, clock = world()
    env_id = running(service)
    with pytest.raises(InvalidState, match="restart: true"):
        resizing.resize("alice", env_id, patch(size="medium"))
    assert service.get("alice", env_id).size == "small"

    result = resizing.resize("alice", env_id, patch(size="medium", restart=True))
    env = result.environment
    assert result.accepted and env.status is Status.STOPPING
    assert Operation.parse(env.operation or "").kind is Kind.RESTART
    assert (env.size, env.cpu_cores) == ("small", 1) and env.pending_size is not None
    assert env.pending_size.size == "medium"
    clock.advance(minutes=30)  # the stop's final snapshot and the compute stopped
    run(service, "alice", env_id, Status.STOPPED)
    assert service.get("alice", env_id).size == "small"  # still: the start applies it
    started = resizing.start_after_restart("alice", env_id, env.operation or "")
    assert started is not None and started.status is Status.STARTING
    assert (started.size, started.cpu_cores, started.memory_gb, started.storage_gb) == ("medium", 2, 4, 50)
    assert started.pending_size is None and started.status_reason == RESTART_REASON
    # A re-run of that step finds the start it made; the old restart owns nothing else.
    assert resizing.start_after_restart("alice", env_id, env.operation or "") == started
    run(service, "alice", env_id, Status.RUNNING)
    assert resizing.start_after_restart("alice", env_id, env.operation or "") is None
    # Half an hour of compute at the old size (1 vCPU, 2 GB), none yet at the new.
    used = metering.to_date(service.get("alice", env_id), clock())["2026-12"]
    assert (used.vcpu_seconds, used.gb_seconds) == (1800, 3600)
    reasons = [event.reason for event in service.events("alice", env_id)]
    assert "resize to medium (2 CPU, 4 GB, 50 GB storage) as it restarts" in reasons


def test_busy_environments_cannot_be_resized() -> None:
    service, resizing, _ = world()
    env = service.create("alice", request()).environment  # CREATING
    with pytest.raises(InvalidState, match="once it settles"):
        resizing.resize("alice", env.id, patch(size="large", restart=True))
    with pytest.raises(pydantic.ValidationError, match="restart goes with a resize"):
        patch(restart=True)  # a restart alone resizes nothing
