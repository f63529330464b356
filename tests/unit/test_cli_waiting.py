"""The CLI's `--wait`: where it stops polling. A restart passes through STOPPED ("stopped to
restart") for a few milliseconds between its stop and its start; a wait for RUNNING goes on
through it, and ends at a STOPPED that says anything else (a refused start, a racing stop)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from cli import waiting


class Answers:
    """The API's answers for one environment, in order (the last one repeats)."""

    def __init__(self, *states: tuple[str, str | None]) -> None:
        self._states = list(states)
        self.reads = 0

    def environment(self, environment_id: str) -> dict[str, Any]:
        status, reason = self._states[min(self.reads, len(self._states) - 1)]
        self.reads += 1
        return {"id": environment_id, "status": status, "status_reason": reason, "progress": []}


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "FIRST_POLL", 0.0)  # no sleeping between the scripted answers
    monkeypatch.setattr(waiting, "LAST_POLL", 0.0)


def wait(answers: Answers, target: str | None = "RUNNING") -> dict[str, Any] | None:
    return waiting.wait_for(answers, "env-0123456789abcdef", target, 10, Console(file=io.StringIO()))  # type: ignore[arg-type]


def test_a_wait_for_running_goes_on_through_a_restarts_stop() -> None:
    answers = Answers(
        ("STOPPING", "restarting to resize"),
        ("STOPPED", "stopped to restart"),
        ("STARTING", "restarting to resize"),
        ("RUNNING", "running"),
    )
    found = wait(answers)
    assert found is not None and found["status"] == "RUNNING" and answers.reads == 4


def test_a_wait_for_running_ends_at_a_stopped_that_says_why() -> None:
    answers = Answers(("STOPPING", None), ("STOPPED", "not started again: at most 1 environment may run"))
    found = wait(answers)
    assert found is not None and found["status"] == "STOPPED" and answers.reads == 2


def test_a_wait_for_stopped_ends_at_any_stopped() -> None:
    found = wait(Answers(("STOPPING", None), ("STOPPED", "stopped to restart")), target="STOPPED")
    assert found is not None and found["status"] == "STOPPED"
