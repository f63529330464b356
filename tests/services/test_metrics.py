"""Resource samples through the service, over the in-memory fakes and a fixed clock: an active
report defers the idle stop and an idle one does not; the series is the owner's, for the hours
asked; expiry keeps the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared import agent_tokens
from shared.domain.environment import Status
from shared.domain.lifecycle import Command
from shared.domain.requests import ActivityReport, SetupFailure
from shared.domain.samples import Sample
from shared.errors import NotFound
from shared.services.metrics import ResourceMetrics
from tests.fakes import FixedClock, InMemoryRecords, InMemoryResourceSamples
from tests.services.test_environments import make_service, request, run

T0 = datetime(2026, 12, 3, 9, 0, 30, tzinfo=UTC)
BUSY = Sample(cpu_percent=80.0, memory_mb=900.0, disk_mb=120.0)
QUIET = Sample(cpu_percent=1.5, memory_mb=850.0)


def setup() -> tuple[ResourceMetrics, InMemoryRecords, FixedClock, str, str]:
    store, clock = InMemoryRecords(), FixedClock(T0)
    service = make_service(store, clock)
    env = service.create("alice", request()).environment
    run(service, "alice", env.id, Status.RUNNING)
    token = service.secure_environment(service.get("alice", env.id))[agent_tokens.AGENT_TOKEN_VARIABLE]
    return ResourceMetrics(service, InMemoryResourceSamples(), clock), store, clock, env.id, token


def test_active_reports_defer_the_idle_stop_and_idle_ones_only_add_their_sample() -> None:
    metrics, store, clock, env_id, token = setup()
    service = metrics._environments
    clock.advance(minutes=10)
    metrics.report(service.agent_environment(token, env_id), ActivityReport(active=False, sample=QUIET))
    assert store.get("alice", env_id).last_accessed_at == T0  # idle: the idle stop still comes
    clock.advance(minutes=1)
    metrics.report(service.agent_environment(token, env_id), ActivityReport(sample=BUSY))
    assert store.get("alice", env_id).last_accessed_at == T0 + timedelta(minutes=11)

    env, points = metrics.series("alice", env_id, hours=24)
    assert env.id == env_id
    assert [(p.at, p.sample) for p in points] == [
        (datetime(2026, 12, 3, 9, 10, tzinfo=UTC), QUIET),
        (datetime(2026, 12, 3, 9, 11, tzinfo=UTC), BUSY),
    ]
    with pytest.raises(NotFound):
        metrics.series("bob", env_id, hours=24)


def test_the_hours_asked_and_the_window_kept() -> None:
    metrics, _, clock, env_id, token = setup()
    env = metrics._environments.agent_environment(token, env_id)
    for _ in range(30):  # a sample every hour for 30 hours
        metrics.report(env, ActivityReport(active=False, sample=QUIET))
        clock.advance(hours=1)
    clock.advance(hours=-1)  # now: the last sample's minute
    assert len(metrics.series("alice", env_id, hours=1)[1]) == 1
    assert len(metrics.series("alice", env_id, hours=3)[1]) == 3
    assert len(metrics.series("alice", env_id, hours=24)[1]) == 24  # the window, not more
    assert len(metrics.series("alice", env_id, hours=48)[1]) == 24
    # Expiry deletes the hours before the one the window starts in (09:00-13:00 on the first day);
    # that hour's block is kept whole, so 25 samples stay stored and 24 are shown.
    assert metrics.expire() == 5
    assert len(metrics._samples.series(env_id, T0 - timedelta(days=3))) == 25
    metrics.forget(env_id)
    assert metrics.series("alice", env_id, hours=24)[1] == []


CLONE = SetupFailure(
    step="repository", detail="fatal: Authentication failed for 'https://git.example.com/a.git/'"
)
DOTFILES = SetupFailure(step="dotfiles", detail="install.sh failed")


def setup_notes(service, env_id: str) -> list[str]:
    return [e.reason for e in service.events("alice", env_id) if e.reason.startswith("workspace setup:")]


def test_a_failed_setup_is_noted_once_and_is_the_running_environments_reason() -> None:
    metrics, store, clock, env_id, token = setup()
    service = metrics._environments
    report = ActivityReport(active=False, setup=[CLONE, DOTFILES])
    metrics.report(service.agent_environment(token, env_id), report)
    env = store.get("alice", env_id)
    expected = (
        "workspace setup: the repository was not cloned (fatal: Authentication failed for "
        "'https://git.example.com/a.git/'); the dotfiles were not installed (install.sh failed)"
    )
    assert env.status is Status.RUNNING and env.status_reason == expected == env.setup_problem
    assert env.last_accessed_at == T0  # not active: no activity written
    clock.advance(minutes=1)
    metrics.report(service.agent_environment(token, env_id), report)  # a repeat writes nothing
    assert setup_notes(service, env_id) == [expected]
    assert store.get("alice", env_id).version == env.version

    # The next start sets the workspace up anew: its reason is its own again.
    service.command("alice", env_id, Command.STOP)
    run(service, "alice", env_id, Status.STOPPED)
    service.command("alice", env_id, Command.START)
    run(service, "alice", env_id, Status.RUNNING)
    env = store.get("alice", env_id)
    assert env.setup_problem is None and env.status_reason == "running"


def test_a_setup_reported_while_starting_becomes_the_reason_when_it_runs() -> None:
    metrics, store, _, env_id, token = setup()
    service = metrics._environments
    service.command("alice", env_id, Command.STOP)
    run(service, "alice", env_id, Status.STOPPED)
    service.command("alice", env_id, Command.START)
    only_dotfiles = ActivityReport(setup=[DOTFILES])
    metrics.report(service.agent_environment(token, env_id), only_dotfiles)
    starting = store.get("alice", env_id)
    assert starting.status is Status.STARTING and starting.status_reason != starting.setup_problem
    run(service, "alice", env_id, Status.RUNNING)
    running = store.get("alice", env_id)
    assert running.status_reason == "workspace setup: the dotfiles were not installed (install.sh failed)"
    assert setup_notes(service, env_id) == [running.status_reason]
    # A stopped environment's late report changes nothing.
    service.command("alice", env_id, Command.STOP)
    run(service, "alice", env_id, Status.STOPPED)
    stopped = store.get("alice", env_id)
    metrics.report(stopped, ActivityReport(active=False, setup=[CLONE]))
    assert store.get("alice", env_id).version == stopped.version
