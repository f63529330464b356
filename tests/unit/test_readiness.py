"""Readiness is checked at most once per interval, whoever asks and however often."""

from __future__ import annotations

import logging
import threading

from shared.services.readiness import Readiness


class Dependency:
    def __init__(self) -> None:
        self.checks = 0
        self.down = False

    def check(self) -> None:
        self.checks += 1
        if self.down:
            raise ConnectionError("unreachable")


def test_a_check_serves_every_probe_of_its_interval_then_one_more_is_made() -> None:
    now = [100.0]
    dependency = Dependency()
    readiness = Readiness(dependency.check, interval=5.0, clock=lambda: now[0])
    assert [readiness.failure() for _ in range(50)] == [None] * 50
    assert dependency.checks == 1
    dependency.down = True
    now[0] += 4.9
    assert readiness.failure() is None and dependency.checks == 1  # still the last answer
    now[0] += 0.1
    assert isinstance(readiness.failure(), ConnectionError) and dependency.checks == 2
    assert (
        isinstance(readiness.failure(), ConnectionError) and dependency.checks == 2
    )  # a failure is kept too
    dependency.down = False
    now[0] += 5.0
    assert readiness.failure() is None and dependency.checks == 3


def test_concurrent_probes_share_one_check() -> None:
    dependency = Dependency()
    gate = threading.Event()

    def slow() -> None:
        gate.wait(5)
        dependency.check()

    readiness = Readiness(slow, interval=60.0)
    answers: list[object] = []
    threads = [threading.Thread(target=lambda: answers.append(readiness.failure())) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert answers == [None] * 8 and dependency.checks == 1


def test_while_a_check_is_under_way_others_get_the_last_answer_without_waiting() -> None:
    now = [0.0]
    gate, entered = threading.Event(), threading.Event()
    dependency = Dependency()

    def check() -> None:
        if dependency.checks:  # the second check hangs until let go
            entered.set()
            gate.wait(10)
        dependency.check()

    readiness = Readiness(check, interval=5.0, clock=lambda: now[0])
    assert readiness.failure() is None  # the first answer
    dependency.down = True
    now[0] = 6.0
    slow = threading.Thread(target=readiness.failure)
    slow.start()
    assert entered.wait(10)
    assert readiness.failure() is None and dependency.checks == 1  # the last answer, not a wait
    gate.set()
    slow.join(10)
    assert isinstance(readiness.failure(), ConnectionError) and dependency.checks == 2


def test_an_outage_is_logged_once_per_check_not_once_per_probe() -> None:
    now = [100.0]
    dependency = Dependency()
    dependency.down = True
    readiness = Readiness(dependency.check, interval=5.0, clock=lambda: now[0])
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("dev8.readiness")
    logger.addHandler(handler)  # its own handler: the app's logging set-up may stop propagation
    try:
        assert all(isinstance(readiness.failure(), ConnectionError) for _ in range(200))
        now[0] += 5.0
        assert all(isinstance(readiness.failure(), ConnectionError) for _ in range(200))
    finally:
        logger.removeHandler(handler)
    assert seen == ["not ready: table storage unreachable (ConnectionError)"] * 2  # two checks made
