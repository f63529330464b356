"""Provisioning progress: phases only move forward, each ends when the next begins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.progress import Phase, finished, reached, timings

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_each_phase_ends_when_the_next_begins_and_finishing_ends_the_last() -> None:
    steps = reached([], Phase.WORKSPACE, at(0))
    assert steps is not None
    steps = reached(steps, Phase.COMPUTE_REQUESTED, at(0.4))
    assert steps is not None
    steps = reached(steps, Phase.IMAGE_PULLING, at(1.6))  # a skipped phase is fine
    assert steps is not None
    assert [s.phase for s in steps] == [Phase.WORKSPACE, Phase.COMPUTE_REQUESTED, Phase.IMAGE_PULLING]
    assert [s.ended_at for s in steps] == [at(0.4), at(1.6), None]
    done = finished(steps, at(22.6))
    assert done[-1].ended_at == at(22.6)
    assert timings(done) == "workspace 0.4 s, compute requested 1.2 s, image pulling 21.0 s"


def test_reaching_a_phase_again_or_an_earlier_one_changes_nothing() -> None:
    steps = reached([], Phase.IMAGE_PULLING, at(0))
    assert steps is not None
    assert reached(steps, Phase.IMAGE_PULLING, at(5)) is None  # a repeated poll
    assert reached(steps, Phase.COMPUTE_REQUESTED, at(6)) is None  # a re-run activity, late
    assert timings(steps) == ""  # nothing has ended yet


def test_finishing_twice_keeps_the_first_end() -> None:
    steps = finished(reached([], Phase.WORKSPACE, at(0)) or [], at(1))
    assert finished(steps, at(9))[0].ended_at == at(1)
