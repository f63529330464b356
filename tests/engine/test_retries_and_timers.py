"""Retries realised by the host, durable timers on a manual clock, deadlines with task_any."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from azure.durable_functions.models.ReplaySchema import ReplaySchema

from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import (
    DurableEngine,
    InstanceNotRunningError,
    LongTimerSettings,
    RuntimeStatus,
)
from devhost.host.durable.history import parse_time
from tests.engine.conftest import START, EngineFactory, action_events, run_to_completion, status_of
from tests.engine.toy_app import ENTERED, GATES, PROBE

ALL_SCHEMAS = pytest.mark.parametrize("schema", [ReplaySchema.V1, ReplaySchema.V2, ReplaySchema.V3])


@ALL_SCHEMAS
def test_retry_that_fails_twice_then_succeeds(
    make_engine: EngineFactory, clock: ManualClock, schema: ReplaySchema
) -> None:
    engine = make_engine(replay_schema=schema)
    instance_id = engine.start("retry_flaky", {"key": "k", "failures": 2, "attempts": 5})

    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.RUNNING  # waiting on the first retry timer
    assert engine.next_timer_at() == START + timedelta(seconds=30)

    run_to_completion(engine, clock, instance_id)

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == "ok after 3 attempts"
    assert PROBE.calls["flaky:k"] == 3
    # The exact history the SDK's RetryAbleTask replays: failure, timer, a new TaskScheduled.
    assert action_events(status.history) == [
        ("TaskScheduled", 0),
        ("TaskFailed", 0),
        ("TimerCreated", 1),
        ("TimerFired", 1),
        ("TaskScheduled", 2),
        ("TaskFailed", 2),
        ("TimerCreated", 3),
        ("TimerFired", 3),
        ("TaskScheduled", 4),
        ("TaskCompleted", 4),
    ]
    fire_times = [parse_time(e["FireAt"]) for e in status.history if e["EventType"] == 10]
    assert fire_times == [START + timedelta(seconds=30), START + timedelta(seconds=60)]


def test_exhausted_retries_raise_in_the_orchestrator_which_can_catch(
    engine: DurableEngine, clock: ManualClock
) -> None:
    instance_id = engine.start("retry_then_clean_up", {"key": "always", "failures": 99})

    run_to_completion(engine, clock, instance_id)

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"caught": "boom #2 \n ValueError", "cleanup": "Hello cleanup"}
    assert PROBE.calls["flaky:always"] == 2
    # Durable Task waits once more after the last failed attempt before giving up.
    assert action_events(status.history) == [
        ("TaskScheduled", 0),
        ("TaskFailed", 0),
        ("TimerCreated", 1),
        ("TimerFired", 1),
        ("TaskScheduled", 2),
        ("TaskFailed", 2),
        ("TimerCreated", 3),
        ("TimerFired", 3),
        ("TaskScheduled", 4),
        ("TaskCompleted", 4),
    ]


@ALL_SCHEMAS
def test_retries_inside_a_fan_out_keep_the_sdk_numbering(
    make_engine: EngineFactory, clock: ManualClock, schema: ReplaySchema
) -> None:
    engine = make_engine(replay_schema=schema)
    instance_id = engine.start("parallel_retries", instance_id="par")

    run_to_completion(engine, clock, instance_id)

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["ok after 2 attempts"] * 3 + ["Hello after"]
    events = action_events(status.history)
    # Three failures in one batch: retry timers 3-5, re-scheduled attempts 6-8, then greet as 9.
    assert [i for kind, i in events if kind == "TimerCreated"] == [3, 4, 5]
    assert [i for kind, i in events if kind == "TaskScheduled"] == [0, 1, 2, 6, 7, 8, 9]


def test_durable_timer_loop_fires_on_the_manual_clock(engine: DurableEngine, clock: ManualClock) -> None:
    instance_id = engine.start("poll_until_ready", {"key": "env", "target": 3})

    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.custom_status == {"polls": 1}
    assert clock.advance_to_next_timer() == START + timedelta(minutes=1)
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.custom_status == {"polls": 2}
    assert status.runtime_status == RuntimeStatus.RUNNING

    run_to_completion(engine, clock, instance_id)

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"polls": 3, "finished_at": (START + timedelta(minutes=2)).isoformat()}
    assert clock.now() == START + timedelta(minutes=2)


def test_timers_do_not_fire_before_their_time(engine: DurableEngine, clock: ManualClock) -> None:
    instance_id = engine.start("poll_until_ready", {"key": "slow", "target": 2})
    engine.run_until_idle()
    clock.advance(timedelta(seconds=59))
    engine.run_until_idle()
    assert PROBE.calls["poll:slow"] == 1
    clock.advance(timedelta(seconds=1))
    engine.run_until_idle()
    assert PROBE.calls["poll:slow"] == 2
    assert status_of(engine, instance_id).runtime_status == RuntimeStatus.COMPLETED


def test_deadline_activity_wins_and_the_timer_is_cancelled(engine: DurableEngine) -> None:
    GATES["fast"] = threading.Event()
    GATES["fast"].set()
    instance_id = engine.start("deadline_race", {"minutes": 10, "gate": "fast"})

    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.output == {"result": "worked fast"}
    assert engine.next_timer_at() is None  # the cancelled deadline no longer fires


def test_deadline_timer_wins_over_a_slow_activity(make_engine: EngineFactory, clock: ManualClock) -> None:
    engine = make_engine(max_workers=2)
    GATES["slow"] = threading.Event()
    ENTERED["slow"] = threading.Event()
    with engine:
        instance_id = engine.start("deadline_race", {"minutes": 10, "gate": "slow"})
        assert ENTERED["slow"].wait(timeout=10)  # the activity is running in the worker pool
        clock.advance(timedelta(minutes=10))

        status = engine.wait(instance_id, timeout=10)

        assert status.runtime_status == RuntimeStatus.COMPLETED
        assert status.output == {"result": "timed out"}
        GATES["slow"].set()  # the late result arrives after completion and is dropped
    final = engine.status(instance_id)
    assert final is not None
    assert final.output == {"result": "timed out"}
    assert [e["EventType"] for e in final.history].count(5) == 0


def test_long_timers_are_split_like_on_azure_storage(make_engine: EngineFactory, clock: ManualClock) -> None:
    engine = make_engine(long_timers=LongTimerSettings(timedelta(days=6), timedelta(days=3)))
    instance_id = engine.start("long_sleep", 10)

    run_to_completion(engine, clock, instance_id)

    status = engine.status(instance_id)
    assert status is not None
    assert status.output == (START + timedelta(days=10)).isoformat()
    fire_times = [parse_time(e["FireAt"]) for e in status.history if e["EventType"] == 10]
    assert fire_times == [START + timedelta(days=3), START + timedelta(days=6), START + timedelta(days=10)]


def test_without_timer_limits_a_long_timer_is_a_single_timer(
    engine: DurableEngine, clock: ManualClock
) -> None:
    instance_id = engine.start("long_sleep", 10)
    run_to_completion(engine, clock, instance_id)
    status = engine.status(instance_id)
    assert status is not None
    assert [e["EventType"] for e in status.history].count(10) == 1
    assert status.output == (START + timedelta(days=10)).isoformat()


def test_deadline_event_arrives_in_time(engine: DurableEngine) -> None:
    instance_id = engine.start("event_or_timeout")
    engine.run_until_idle()
    engine.raise_event(instance_id, "Go", "now")
    engine.run_until_idle()

    status = status_of(engine, instance_id)
    assert status.output == "Hello go now"
    # The event wait takes no sequence number: timer 0, then greet 1.
    assert action_events(status.history) == [("TimerCreated", 0), ("TaskScheduled", 1), ("TaskCompleted", 1)]
    assert engine.next_timer_at() is None


def test_deadline_timer_fires_before_the_event(engine: DurableEngine, clock: ManualClock) -> None:
    instance_id = engine.start("event_or_timeout")
    engine.run_until_idle()
    clock.advance(timedelta(hours=1))
    engine.run_until_idle()

    assert status_of(engine, instance_id).output == "Hello timeout"
    with pytest.raises(InstanceNotRunningError):
        engine.raise_event(instance_id, "Go", "too late")


def test_sub_orchestration_with_retry_starts_a_new_child_per_attempt(
    engine: DurableEngine, clock: ManualClock
) -> None:
    instance_id = engine.start("parent_retrying_child", instance_id="p")

    run_to_completion(engine, clock, instance_id)

    status = status_of(engine, instance_id)
    assert status.output == "ok after 2 attempts"
    created = [(e["EventId"], e["InstanceId"]) for e in status.history if e["EventType"] == 7]
    assert created == [(0, "p:0000"), (2, "p:0002")]  # timer 1 sits between the attempts
    assert status_of(engine, "p:0000").runtime_status == RuntimeStatus.FAILED
    assert status_of(engine, "p:0002").runtime_status == RuntimeStatus.COMPLETED
