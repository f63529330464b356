"""OwnerTurns: one holder per owner at a time, the usage row handed to whoever waits next."""

from __future__ import annotations

import threading

from shared.adapters.tables.turns import OwnerTurns, Turn
from shared.domain.quota import Usage


def test_one_owner_takes_turns_and_another_does_not_wait() -> None:
    turns = OwnerTurns()
    entered = threading.Event()

    def wait_for_alice() -> None:
        with turns.take("alice"):
            entered.set()

    with turns.take("alice") as held:
        waiter = threading.Thread(target=wait_for_alice)
        waiter.start()
        assert not entered.wait(0.2)  # alice's second writer waits for the first
        with turns.take("bob"):  # another owner goes ahead meanwhile (no deadlock here)
            pass
        held.usage = ("etag-1", Usage(1, 1))
    assert entered.wait(5)
    waiter.join()


def test_the_row_is_handed_to_the_next_holder_once() -> None:
    turns = OwnerTurns()
    got: list[object] = []
    first_in = threading.Event()
    release = threading.Event()

    def first() -> None:
        with turns.take("alice") as turn:
            first_in.set()
            release.wait(5)
            turn.usage = ("etag-2", Usage(2, 1))

    def second() -> None:
        with turns.take("alice") as turn:
            got.append(turn.take_usage())
            got.append(turn.take_usage())  # taken: a failure after this leaves nothing stale

    one = threading.Thread(target=first)
    one.start()
    assert first_in.wait(5)
    two = threading.Thread(target=second)
    two.start()
    release.set()
    one.join()
    two.join()
    assert got == [("etag-2", Usage(2, 1)), None]


def test_a_row_left_with_nobody_waiting_is_dropped() -> None:
    turns = OwnerTurns()
    with turns.take("alice") as turn:
        turn.usage = ("etag-3", Usage(3, 0))
    assert len(turns) == 0  # nothing kept for an owner nobody is writing for
    with turns.take("alice") as later:
        assert later.take_usage() is None  # read afresh: memory never outlives the queue


def test_a_holder_that_fails_leaves_its_turn() -> None:
    turns = OwnerTurns()
    try:
        with turns.take("alice"):
            raise RuntimeError("the commit failed")
    except RuntimeError:
        pass
    assert len(turns) == 0


def test_a_writer_kept_waiting_too_long_goes_ahead_on_its_own() -> None:
    # A slow table service holds the queue: past the wait, the writer races as before turns.
    turns = OwnerTurns(wait_seconds=0.05)
    seen: list[tuple[Turn, object]] = []

    def late_writer() -> None:
        with turns.take("alice") as own:
            seen.append((own, own.take_usage()))

    with turns.take("alice") as held:
        held.usage = ("etag-4", Usage(4, 4))
        late = threading.Thread(target=late_writer)
        late.start()
        late.join(5)
        assert not late.is_alive()  # it did not wait for this holder
    ((own, handed),) = seen
    assert own is not held and handed is None  # a turn of its own: nothing handed to it
    assert len(turns) == 0
