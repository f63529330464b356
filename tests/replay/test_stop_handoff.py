"""The stop hand-off, replayed by the real Durable SDK: the workspace is asked for a final
snapshot, the orchestration waits with durable timers until it answers or the deadline passes,
and the audit trail (and the next start) says what was saved and what was lost."""

from __future__ import annotations

import functools
from datetime import timedelta

import pytest

from devhost.host.durable.engine import RuntimeStatus
from shared import wiring
from shared.domain import operation
from shared.domain.environment import Status
from shared.domain.lifecycle import Command
from shared.domain.snapshots import Reason, SnapshotEvent
from tests.fakes import ScriptedAgent, without_phase_timings
from tests.replay.test_lifecycle_orchestrations import (
    OWNER,
    T0,
    clock,  # noqa: F401  # fixtures
    command,
    create,
    engine,  # noqa: F401
    launch,
    run,
)


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> ScriptedAgent:
    scripted = ScriptedAgent()
    monkeypatch.setattr(wiring, "agent", functools.lru_cache(maxsize=1)(lambda: scripted))
    return scripted


def running(engine, clock):  # noqa: F811
    env = create()
    run(engine, clock, launch(engine, operation.PROVISION, env))
    return wiring.environments().get(OWNER, env.id)


def trail(env_id: str) -> list[tuple[str, str, str]]:
    return [(e.from_status, e.to_status, e.reason) for e in wiring.store().events(OWNER, env_id)]


def test_a_final_snapshot_is_asked_for_awaited_and_recorded(engine, clock, agent):  # noqa: F811
    env = running(engine, clock)
    stopping = wiring.environments().command(OWNER, env.id, Command.STOP).environment
    instance = launch(engine, operation.STOP, stopping)
    engine.run_until_idle()  # asked; no answer yet: waiting on a durable timer
    assert agent.asked == {(env.id, stopping.operation): Reason.STOP}
    assert wiring.environments().get(OWNER, env.id).status is Status.STOPPING
    agent.answers[stopping.operation] = SnapshotEvent(
        event="snapshot", id="abcdef12", taken_at=T0, reason=Reason.STOP, files=7, bytes_added=2048
    )
    status = run(engine, clock, instance)
    assert status.runtime_status is RuntimeStatus.COMPLETED
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.STOPPED and record.unclean_stop is None
    assert trail(env.id)[1] == (
        Status.STOPPING,
        Status.STOPPING,
        "final snapshot abcdef12 taken (7 files, 2048 bytes added)",
    )
    assert agent.withdrawn == [stopping.operation]  # the mailbox is left clean
    # The answer is in the snapshot log even though no agent report arrived.
    assert [s.id for s in wiring.snapshots().list(OWNER, env.id)] == ["abcdef12"]


def test_a_stop_with_nothing_new_says_since_which_snapshot(engine, clock, agent):  # noqa: F811
    """ "Nothing changed since the last one" only when there is one: else there was nothing to save."""
    env = running(engine, clock)
    for expected in (
        "final snapshot: nothing to save yet (the working tree is as the workspace started)",
        "final snapshot: nothing changed since snapshot abcdef12 (2026-11-21T09:00:00Z)",
    ):
        stopping = wiring.environments().command(OWNER, env.id, Command.STOP).environment
        agent.answers[stopping.operation] = SnapshotEvent(event="unchanged", reason=Reason.STOP)
        assert run(engine, clock, launch(engine, operation.STOP, stopping)).runtime_status is (
            RuntimeStatus.COMPLETED
        )
        assert trail(env.id)[1][2] == expected
        # A snapshot taken before the next session's stop (its answer, as the hand-off records it).
        wiring.snapshots().record_answer(
            OWNER, env.id, SnapshotEvent(event="snapshot", id="abcdef12", taken_at=T0, reason=Reason.INTERVAL)
        )
        starting = wiring.environments().command(OWNER, env.id, Command.START).environment
        run(engine, clock, launch(engine, operation.START, starting))


def test_a_workspace_that_never_answers_is_stopped_at_the_deadline_and_the_next_start_says_so(
    engine,  # noqa: F811
    clock,  # noqa: F811
    agent,
    app_env,
):
    env = running(engine, clock)
    started = clock.now()
    command(engine, clock, env.id, Command.STOP)
    waited = clock.now() - started
    limit = get_wait()
    assert timedelta(seconds=limit) <= waited < timedelta(seconds=limit + 10)  # durable timers, not sleep
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.STOPPED
    assert record.unclean_stop == f"the workspace did not answer within {limit} s; no snapshot was ever taken"
    assert trail(env.id)[1][2] == f"no final snapshot: {record.unclean_stop}"
    assert wiring.compute().status(f"dev8-{env.id[4:]}").state.value == "stopped"  # stopped anyway

    command(engine, clock, env.id, Command.START)
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.RUNNING and record.unclean_stop is None
    assert without_phase_timings(trail(env.id)[0][2]) == (
        "running; the last session ended without a final snapshot "
        f"({'the workspace did not answer within ' + str(limit) + ' s; no snapshot was ever taken'}): "
        "no snapshot existed, so the working tree started empty; later changes were lost"
    )


def test_a_stop_of_compute_that_is_already_gone_notes_the_loss_at_once(engine, clock, agent):  # noqa: F811
    env = running(engine, clock)
    wiring.compute().stop(f"dev8-{env.id[4:]}")  # crashed: the compute no longer runs
    started = clock.now()
    command(engine, clock, env.id, Command.STOP)
    assert clock.now() - started < timedelta(seconds=5) and agent.asked == {}
    assert wiring.environments().get(OWNER, env.id).unclean_stop.startswith("the workspace was not running")


def get_wait() -> int:
    from shared.settings import get_settings

    return get_settings().snapshot_stop_wait_seconds
