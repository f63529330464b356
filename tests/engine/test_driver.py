"""The background driver: worker pool, async activities, real-time timers, waiting."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from devhost.host.durable.clock import ManualClock, RealClock
from devhost.host.durable.engine import DurableEngine, RuntimeStatus
from tests.engine.conftest import EngineFactory, status_of
from tests.engine.toy_app import BARRIERS, ENTERED, GATES


def test_activities_run_concurrently_on_the_worker_pool(make_engine: EngineFactory) -> None:
    BARRIERS["pool"] = threading.Barrier(3, timeout=10)
    engine = make_engine(max_workers=3, clock=RealClock())
    with engine:
        instance_id = engine.start("concurrent_fan_out", "pool")
        status = engine.wait(instance_id, timeout=20)
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["met", "met", "met", "Hi pool"]  # async_greet ran too


def test_a_single_worker_cannot_pass_the_barrier(make_engine: EngineFactory) -> None:
    # The counter-check of the test above: with one worker the three parties never meet.
    BARRIERS["solo"] = threading.Barrier(3, timeout=0.2)
    engine = make_engine(max_workers=1, clock=RealClock())
    with engine:
        instance_id = engine.start("concurrent_fan_out", "solo")
        status = engine.wait(instance_id, timeout=20)
    assert status.runtime_status == RuntimeStatus.FAILED
    assert "BrokenBarrierError" in status.output


def test_real_clock_timers_do_not_fire_early(make_engine: EngineFactory) -> None:
    engine = make_engine(clock=RealClock())
    with engine:
        instance_id = engine.start("retry_flaky", {"key": "rt", "failures": 1, "attempts": 2})
        # The retry interval is 30 s in the toy; a short real wait proves nothing fires early.
        early = engine.wait(instance_id, timeout=0.3)
    assert early.runtime_status == RuntimeStatus.RUNNING


def test_real_clock_deterministic_mode_wait_sleeps_until_the_timer(make_engine: EngineFactory) -> None:
    engine = make_engine(clock=RealClock())
    instance_id = engine.start("long_sleep", 0.000003)  # a timer ~0.26 s ahead, in days
    status = engine.wait(instance_id, timeout=20)
    assert status.runtime_status == RuntimeStatus.COMPLETED


def test_manual_clock_drives_timers_in_the_background(make_engine: EngineFactory, clock: ManualClock) -> None:
    engine = make_engine()
    with engine:
        instance_id = engine.start("poll_until_ready", {"key": "bg", "target": 2})
        first = engine.wait(instance_id, timeout=0.5)
        assert first.runtime_status == RuntimeStatus.RUNNING  # time does not move by itself
        clock.advance(timedelta(minutes=1))
        status = engine.wait(instance_id, timeout=20)
    assert status.output == {"polls": 2, "finished_at": clock.now().isoformat()}


def test_run_until_idle_refuses_while_the_driver_runs(engine: DurableEngine) -> None:
    with engine, pytest.raises(RuntimeError):
        engine.run_until_idle()


def test_work_queued_when_the_driver_stops_is_not_lost(make_engine: EngineFactory) -> None:
    GATES["hold"] = threading.Event()
    ENTERED["hold"] = threading.Event()
    engine = make_engine(max_workers=1)
    engine.start_driver()
    held = engine.start("gated_sequence", "hold")
    assert ENTERED["hold"].wait(timeout=10)  # the only worker is busy
    queued = engine.start("greet_sequence", ["queued"])
    for _ in range(1000):  # until its activity has been scheduled behind the busy worker
        if any(e["EventType"] == 4 for e in status_of(engine, queued).history):
            break
        threading.Event().wait(0.005)

    stopper = threading.Thread(target=engine.stop_driver)
    stopper.start()
    GATES["hold"].set()
    stopper.join(timeout=20)
    assert not stopper.is_alive()

    engine.run_until_idle()  # deterministic mode picks up where the driver left off
    assert status_of(engine, held).output == ["worked hold", "Hello after gate"]
    assert status_of(engine, queued).output == ["Hello queued"]
