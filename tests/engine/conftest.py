"""Fixtures for the durable engine tests: a manual clock and engines over the toy app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import DurableEngine, InstanceStatus
from devhost.host.durable.history import Event
from tests.engine.toy_app import BARRIERS, ENTERED, GATES, PROBE, REGISTRY

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_probe() -> Iterator[None]:
    PROBE.reset()
    yield
    for gate in GATES.values():
        gate.set()  # never leave a worker thread blocked behind a failed test
    GATES.clear()
    ENTERED.clear()
    BARRIERS.clear()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


EngineFactory = Callable[..., DurableEngine]


@pytest.fixture
def make_engine(clock: ManualClock) -> Iterator[EngineFactory]:
    engines: list[DurableEngine] = []

    def factory(**options: Any) -> DurableEngine:
        options.setdefault("clock", clock)
        engine = DurableEngine(REGISTRY, **options)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine: EngineFactory) -> DurableEngine:
    return make_engine()


def status_of(engine: DurableEngine, instance_id: str) -> InstanceStatus:
    status = engine.status(instance_id)
    assert status is not None, f"no instance {instance_id}"
    return status


def run_to_completion(
    engine: DurableEngine, clock: ManualClock, instance_id: str, max_timers: int = 50
) -> None:
    """Drive a deterministic engine, jumping the clock from timer to timer, until the instance ends."""
    for _ in range(max_timers):
        engine.run_until_idle()
        status = engine.status(instance_id)
        assert status is not None
        if status.is_terminal or clock.advance_to_next_timer() is None:
            return
    raise AssertionError(f"{instance_id} still running after {max_timers} timers")


def action_events(history: tuple[Event, ...]) -> list[tuple[str, int]]:
    """The history reduced to what the SDK replays on: (event type name, action id) pairs."""
    names = {4: "TaskScheduled", 5: "TaskCompleted", 6: "TaskFailed", 10: "TimerCreated", 11: "TimerFired"}
    keys = {5: "TaskScheduledId", 6: "TaskScheduledId", 11: "TimerId"}
    reduced = []
    for event in history:
        event_type = event["EventType"]
        if event_type in names:
            reduced.append((names[event_type], int(event[keys.get(event_type, "EventId")])))
    return reduced
