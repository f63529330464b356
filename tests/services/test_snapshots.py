"""Snapshot use cases on the in-memory fakes: who may do what, in which status, and what the
audit trail says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared import agent_tokens
from shared.domain.environment import Actor, Status
from shared.domain.lifecycle import Command
from shared.domain.operation import Kind
from shared.domain.snapshots import Reason, SnapshotReport
from shared.errors import InvalidState, NotFound, Unauthorized
from shared.secrets import PASSWORD_KEY, SNAPSHOT_PASSWORD_KEY
from tests.fakes import FixedClock, InMemoryRecords, InMemorySnapshotLogs, ScriptedAgent
from tests.services.test_environments import T0, make_service, request, run, snapshot_service


@pytest.fixture
def world():
    class World:
        clock = FixedClock(T0)
        store = InMemoryRecords()
        logs = InMemorySnapshotLogs()
        agent = ScriptedAgent()
        service = make_service(store, clock)
        snapshots = snapshot_service(service, store, clock, agent, logs)

        def running(self, owner: str = "ada"):
            env = self.service.create(owner, request()).environment
            run(self.service, owner, env.id, Status.RUNNING)
            return self.service.get(owner, env.id)

        def stopped(self, owner: str = "ada"):
            env = self.running(owner)
            self.service.command(owner, env.id, Command.STOP)
            run(self.service, owner, env.id, Status.STOPPED)
            return self.service.get(owner, env.id)

        def token(self, env) -> str:
            return self.service.secure_environment(env)[agent_tokens.AGENT_TOKEN_VARIABLE]

        def report(self, env, *ids: str, event: dict | None = None) -> int:
            listed = [
                {"short_id": sid, "time": (T0 + timedelta(minutes=n)).isoformat(), "tags": ["reason:x"]}
                for n, sid in enumerate(ids)
            ]
            body = SnapshotReport.model_validate({"event": event, "snapshots": listed})
            return self.snapshots.report(self.service.agent_environment(self.token(env), env.id), body)

    return World()


def test_a_manual_snapshot_is_asked_of_a_running_workspace_and_audited(world):
    env = world.running()
    request_id = world.snapshots.take("ada", env.id)
    assert world.agent.asked == {(env.id, request_id): Reason.MANUAL}
    note = world.service.events("ada", env.id)[0]
    assert (note.from_status, note.to_status, note.actor) == (Status.RUNNING, Status.RUNNING, Actor.USER)
    assert note.reason == f"manual snapshot requested ({request_id})"
    # The agent's report lists it, and the trail says it was taken.
    event = {"event": "snapshot", "id": "aaaaaaaa", "reason": "manual", "files": 4, "bytes_added": 99}
    assert world.report(env, "aaaaaaaa", event=event) == 1
    [snap] = world.snapshots.list("ada", env.id)
    assert (snap.id, snap.files, snap.bytes_added) == ("aaaaaaaa", 4, 99)
    assert world.service.events("ada", env.id)[0].reason == "manual snapshot aaaaaaaa taken"


def test_a_manual_outcome_names_the_request_it_answers(world):
    """Two requests in flight: each outcome says which one it answers, in the request's words."""
    env = world.running()
    first, second = world.snapshots.take("ada", env.id), world.snapshots.take("ada", env.id)
    taken = {"event": "snapshot", "id": "aaaaaaaa", "reason": "manual", "request": first}
    world.report(env, "aaaaaaaa", event=taken)
    world.report(env, "aaaaaaaa", event={"event": "unchanged", "reason": "manual", "request": second})
    trail = [e.reason for e in world.service.events("ada", env.id, limit=4)]
    assert trail == [
        f"manual snapshot ({second}): nothing changed since snapshot aaaaaaaa (2026-11-21T12:00:00Z)",
        f"manual snapshot ({first}): aaaaaaaa taken",
        f"manual snapshot requested ({second})",
        f"manual snapshot requested ({first})",
    ]
    # A request name the API could not have given is dropped, not the report with its list.
    odd = {"event": "snapshot", "id": "bbbbbbbb", "reason": "manual", "request": "Not A Request\n"}
    assert world.report(env, "aaaaaaaa", "bbbbbbbb", event=odd) == 2
    assert world.service.events("ada", env.id)[0].reason == "manual snapshot bbbbbbbb taken"


def test_every_manual_request_gets_its_outcome_in_the_trail_and_an_outcome_leaves_the_list(world):
    """Nothing changed, or the agent failed: the user still learns what came of the request; the
    agent sends no list it could vouch for then, and the listed snapshots stay as they were."""
    env = world.running()
    world.snapshots.take("ada", env.id)
    unchanged = {"event": "unchanged", "reason": "manual"}
    assert world.report(env, event=unchanged) == 0  # no repository yet: the list it sends is empty
    said = world.service.events("ada", env.id)[0].reason
    assert said == "manual snapshot: nothing to save yet (the working tree is as the workspace started)"
    world.report(env, "aaaaaaaa", event={"event": "snapshot", "id": "aaaaaaaa", "reason": "interval"})
    world.snapshots.take("ada", env.id)
    assert world.report(env, event=unchanged) == 1  # the listed snapshot stays
    said = world.service.events("ada", env.id)[0].reason
    assert said == "manual snapshot: nothing changed since snapshot aaaaaaaa (2026-11-21T12:00:00Z)"
    world.clock.advance(seconds=600)
    world.snapshots.take("ada", env.id)
    assert world.report(env, event={"event": "failed", "reason": "manual"}) == 1
    said = world.service.events("ada", env.id)[0].reason
    assert said == (
        "manual snapshot failed (the workspace's log says why); "
        "the last snapshot (2026-11-21T12:00:00Z) is 10 min old"
    )
    assert [s.id for s in world.snapshots.list("ada", env.id)] == ["aaaaaaaa"]
    interval = world.service.events("ada", env.id, limit=20)
    assert not [e for e in interval if "interval" in e.reason]  # only manual requests are audited


def test_a_manual_snapshot_of_a_stopped_environment_is_409_and_changes_nothing(world):
    env = world.stopped()
    before = world.service.get("ada", env.id)
    with pytest.raises(InvalidState, match="STOPPED; start it"):
        world.snapshots.take("ada", env.id)
    assert world.agent.asked == {} and world.service.get("ada", env.id) == before


def test_another_owner_gets_404_everywhere(world):
    env = world.stopped()
    world.report(env, "aaaaaaaa")
    for attempt in (
        lambda: world.snapshots.list("eve", env.id),
        lambda: world.snapshots.take("eve", env.id),
        lambda: world.snapshots.restore_on_start("eve", env.id, "aaaaaaaa"),
        lambda: world.snapshots.restore_into_new("eve", env.id, "aaaaaaaa"),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert world.service.list("eve") == [] and world.agent.asked == {}


def test_a_report_needs_this_environments_own_agent_token(world):
    env, other = world.running(), world.running()
    body = SnapshotReport(snapshots=[])
    for token in ("", "nonsense", world.token(other), world.service.secure_environment(env)[PASSWORD_KEY]):
        with pytest.raises(Unauthorized):
            world.snapshots.report(world.service.agent_environment(token, env.id), body)
    assert world.logs.snapshot_log("ada", env.id).snapshots == []


def test_restore_on_start_needs_a_stopped_environment_and_a_known_snapshot(world):
    env = world.running()
    world.report(env, "aaaaaaaa", "bbbbbbbb")
    with pytest.raises(InvalidState, match="RUNNING; stop it"):
        world.snapshots.restore_on_start("ada", env.id, "aaaaaaaa")
    world.service.command("ada", env.id, Command.STOP)
    run(world.service, "ada", env.id, Status.STOPPED)
    for unknown in ("cccccccc", "AAAAAAAA", "../x", "a" * 64):
        with pytest.raises(NotFound, match="snapshot not found"):
            world.snapshots.restore_on_start("ada", env.id, unknown)
    assert world.service.get("ada", env.id).restore_snapshot is None
    snap = world.snapshots.restore_on_start("ada", env.id, "aaaaaaaa")
    assert snap.id == "aaaaaaaa" and world.service.get("ada", env.id).restore_snapshot == "aaaaaaaa"
    note = world.service.events("ada", env.id)[0].reason
    assert note.startswith("the next start restores snapshot aaaaaaaa")


def test_restore_into_a_new_environment_copies_the_repository_and_its_password(world):
    env = world.running()
    world.report(env, "aaaaaaaa")
    result = world.snapshots.restore_into_new("ada", env.id, "aaaaaaaa")  # while RUNNING: fine
    new = result.environment
    assert result.accepted and new.id != env.id and new.status is Status.CREATING
    assert (new.restored_from, new.restore_snapshot) == (env.id, "aaaaaaaa")
    old_values, new_values = (world.service.secure_environment(e) for e in (env, new))
    assert new_values[SNAPSHOT_PASSWORD_KEY] == old_values[SNAPSHOT_PASSWORD_KEY]
    assert new_values[PASSWORD_KEY] != old_values[PASSWORD_KEY]
    assert agent_tokens.matches(new_values[agent_tokens.AGENT_TOKEN_VARIABLE], new.agent_token_hash)
    assert world.service.events("ada", env.id)[0].reason == f"snapshot aaaaaaaa restored into {new.id}"


def test_retirement_keeps_the_newest_reported_snapshot(world):
    env = world.stopped()
    world.report(env, "aaaaaaaa", "bbbbbbbb")
    retiring = world.service.command("ada", env.id, Command.DELETE, Actor.RETENTION, kind=Kind.RETIRE)
    operation = retiring.environment.operation
    assert world.snapshots.remember_snapshot("ada", env.id, operation) == "bbbbbbbb"
    assert world.snapshots.remember_snapshot("ada", env.id, operation) == "bbbbbbbb"  # idempotent
    world.service.settle("ada", env.id, operation, True, "retired", Actor.RETENTION, restorable_days=7)
    restored = world.snapshots.restore_retired("ada", env.id).environment
    assert (restored.restored_from, restored.restore_snapshot) == (env.id, "bbbbbbbb")


def test_only_a_retired_environment_within_its_window_is_restored_and_only_by_its_owner(world):
    live = world.stopped()
    with pytest.raises(NotFound):
        world.snapshots.restore_retired("ada", live.id)  # not retired
    deleted = world.stopped()
    world.service.command("ada", deleted.id, Command.DELETE)
    run(world.service, "ada", deleted.id, Status.DELETED)
    with pytest.raises(NotFound):
        world.snapshots.restore_retired("ada", deleted.id)  # deleted by its owner: nothing to restore
    env = world.stopped()
    world.report(env, "aaaaaaaa")
    retiring = world.service.command("ada", env.id, Command.DELETE, Actor.RETENTION, kind=Kind.RETIRE)
    operation = retiring.environment.operation
    world.snapshots.remember_snapshot("ada", env.id, operation)
    world.service.settle("ada", env.id, operation, True, "retired", Actor.RETENTION, restorable_days=7)
    with pytest.raises(NotFound):
        world.snapshots.restore_retired("mallory", env.id)  # another owner's
    world.clock.advance(seconds=7 * 86400 + 1)
    with pytest.raises(NotFound):
        world.snapshots.restore_retired("ada", env.id)  # the window closed
    assert world.snapshots.retired("ada") == []
