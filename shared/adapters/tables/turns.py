"""One writer of an owner's usage row at a time in this process, each handing the row as it wrote
it to the next (records.py).

A create, and a status change that moves the owner's counters, reads the usage row and writes it
back in its transaction under the row's ETag. Several of one owner in one process at once (a
user's burst of creates, or a script's) all but one lost that race, then read the row again and
retried: a wasted transaction and read each, more with every writer. Taking turns per owner ends
that waste inside a process, and a turn's holder leaves the row as it wrote it (its new ETag and
counters) for whoever waits next, so a queue of writers reads it once. Writers in other
processes race as before and lose to the ETag. A turn lives while someone holds or waits for
it: a row left with nobody waiting is dropped, never served later from memory. A writer waits
for its turn a bounded time (a table service answering slowly holds the queue), then goes ahead
without it and races, as every writer did before turns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared.domain.quota import Usage

# The usage row's ETag (None: no row yet, so the write creates it) and its counters.
UsageState = tuple[str | None, Usage]

WAIT_SECONDS = 5.0  # a turn costs a few round trips; ten queued are well inside this


class Turn:
    """One owner's turn: `usage` is the row as the previous holder wrote it, None when unknown
    (read it)."""

    __slots__ = ("lock", "takers", "usage")

    def __init__(self) -> None:
        self.lock = threading.RLock()  # re-entrant: a holder that writes twice keeps its turn
        self.usage: UsageState | None = None
        self.takers = 0  # holding or waiting; counted, not left to the garbage collector

    def take_usage(self) -> UsageState | None:
        """The row as handed over, once: a holder that fails leaves nothing stale behind."""
        usage, self.usage = self.usage, None
        return usage


class OwnerTurns:
    """The turns of this process, one per owner (partition) with a holder or a waiter."""

    def __init__(self, wait_seconds: float = WAIT_SECONDS) -> None:
        self._turns: dict[str, Turn] = {}
        self._guard = threading.Lock()
        self._wait = wait_seconds

    @contextmanager
    def take(self, partition: str) -> Iterator[Turn]:
        """The owner's turn, or after the wait a turn of this writer's own (it races)."""
        with self._guard:
            turn = self._turns.get(partition)
            if turn is None:
                turn = self._turns[partition] = Turn()
            turn.takers += 1
        try:
            if turn.lock.acquire(timeout=self._wait):
                try:
                    yield turn
                finally:
                    turn.lock.release()
            else:
                yield Turn()  # nothing handed to it, nothing it writes handed on
        finally:
            with self._guard:
                turn.takers -= 1
                if not turn.takers:  # the last taker leaves: so does what it knew
                    del self._turns[partition]

    def __len__(self) -> int:
        return len(self._turns)
