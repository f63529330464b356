"""Instances survive a host restart; activities may run more than once and must be idempotent."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import DurableEngine
from devhost.host.durable.instance import Instance, RuntimeStatus
from devhost.host.durable.store import InstanceStore
from tests.engine.conftest import START, EngineFactory, action_events, run_to_completion, status_of
from tests.engine.toy_app import ENTERED, GATES, PROBE


def test_a_restarted_engine_resumes_in_flight_orchestrations(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    first = make_engine(store_dir=tmp_path)
    retrying = first.start("retry_flaky", {"key": "restart", "failures": 1, "attempts": 3})
    waiting = first.start("approval", instance_id="waits-for-event")
    first.run_until_idle()
    assert PROBE.calls["flaky:restart"] == 1
    del first  # the host goes away; only the files remain

    clock = ManualClock(START)
    second = make_engine(store_dir=tmp_path, clock=clock)
    loaded = second.status(retrying)
    assert loaded is not None
    assert loaded.runtime_status == RuntimeStatus.RUNNING
    assert sorted(second.resume_all()) == sorted([retrying, waiting])
    assert second.next_timer_at() == START + timedelta(seconds=30)  # the retry timer was re-armed

    run_to_completion(second, clock, retrying)
    second.raise_event(waiting, "Approval", "after restart")
    second.run_until_idle()

    assert status_of(second, retrying).output == "ok after 2 attempts"
    assert status_of(second, waiting).output == {"approved_by": "after restart"}
    third = make_engine(store_dir=tmp_path)
    assert status_of(third, retrying).runtime_status == RuntimeStatus.COMPLETED
    assert third.resume_all() == []


def test_an_activity_lost_in_a_crash_runs_again_after_resume(
    make_engine: EngineFactory, clock: ManualClock, tmp_path: Path
) -> None:
    live_dir, crash_dir = tmp_path / "live", tmp_path / "crash"
    GATES["crash"] = threading.Event()
    ENTERED["crash"] = threading.Event()
    first = make_engine(store_dir=live_dir, max_workers=1)
    with first:
        instance_id = first.start("gated_sequence", "crash")
        assert ENTERED["crash"].wait(timeout=10)
        shutil.copytree(live_dir, crash_dir)  # what is on disk when the process dies
        GATES["crash"].set()
        first.wait(instance_id, timeout=10)

    second = make_engine(store_dir=crash_dir)
    status = second.status(instance_id)
    assert status is not None
    assert action_events(status.history) == [("TaskScheduled", 0)]  # scheduled, never answered
    second.resume_all()
    second.run_until_idle()

    status = second.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["worked crash", "Hello after gate"]
    assert PROBE.calls["gated:crash"] == 2  # at-least-once: once per process


def test_an_activity_result_reaches_disk_with_the_episode_it_wakes(
    make_engine: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An activity's result is saved with the history of the episode it wakes, not on its own:
    a host that dies in between runs the activity again after resume, as Durable would."""
    live_dir, crash_dir = tmp_path / "live", tmp_path / "crash"
    first = make_engine(store_dir=live_dir)
    instance_id = first.start("greet_sequence", ["once", "twice"])
    saves: list[list[str]] = []
    save = InstanceStore.save
    monkeypatch.setattr(
        InstanceStore,
        "save",
        lambda store, instance: (
            saves.append([name for name, _ in action_events(tuple(instance.history))])
            or save(store, instance)
        ),
    )
    episodes = 0
    run_episode = first._run_next_episode

    def dies_before_the_second_episode() -> None:
        nonlocal episodes
        episodes += 1
        if episodes == 2:  # the first greeting answered, its episode not yet run
            shutil.copytree(live_dir, crash_dir)
        run_episode()

    monkeypatch.setattr(first, "_run_next_episode", dies_before_the_second_episode)
    first.run_until_idle()
    assert status_of(first, instance_id).output == ["Hello once", "Hello twice"]
    # One save per episode (three), none per result: each ends an episode's history.
    assert saves == [
        ["TaskScheduled"],
        ["TaskScheduled", "TaskCompleted", "TaskScheduled"],
        ["TaskScheduled", "TaskCompleted", "TaskScheduled", "TaskCompleted"],
    ]

    second = make_engine(store_dir=crash_dir)
    assert action_events(status_of(second, instance_id).history) == [("TaskScheduled", 0)]
    second.resume_all()
    second.run_until_idle()
    assert status_of(second, instance_id).output == ["Hello once", "Hello twice"]
    assert PROBE.calls["greet:once"] == 2  # at-least-once: answered, lost, run again


def test_pending_start_is_resumed_from_its_file(make_engine: EngineFactory, tmp_path: Path) -> None:
    first = make_engine(store_dir=tmp_path)
    instance_id = first.start("greet_sequence", ["later"])  # never driven
    second = make_engine(store_dir=tmp_path)
    assert status_of(second, instance_id).runtime_status == RuntimeStatus.PENDING
    second.resume_all()
    second.run_until_idle()
    assert status_of(second, instance_id).output == ["Hello later"]


def test_store_writes_whole_files_and_ignores_interrupted_writes(
    engine: DurableEngine, tmp_path: Path
) -> None:
    store = InstanceStore(tmp_path)
    instance_id = engine.start("greet_sequence", ["x"], instance_id="weird/id:1")
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    instance = Instance(
        instance_id=instance_id,
        name=status.name,
        execution_id="e1",
        input=json.dumps("[]"),
        created_time=START,
        last_updated_time=START,
        history=list(status.history),
    )
    store.save(instance)
    (tmp_path / ".tmp-crashed.part").write_text('{"half": ')  # a write cut short by a crash
    (tmp_path / "garbage.json").write_text("not json")

    loaded = store.load_all()

    assert [i.instance_id for i in loaded] == ["weird/id:1"]
    assert loaded[0].history == instance.history
    assert not list(tmp_path.glob(".tmp-*"))
    assert {p.name for p in tmp_path.glob("*.json")} == {"garbage.json", "weird%2Fid%3A1.json"}


def test_duplicate_activities_prove_idempotency_end_to_end(make_engine: EngineFactory) -> None:
    engine = make_engine(duplicate_activities=True)
    instance_id = engine.start("provision", "env-42")

    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    # create_resource is idempotent: two runs, one resource, the same answer.
    assert PROBE.calls["create:env-42"] == 2
    assert PROBE.resources == {"env-42": 1}
    assert status.output["resource"] == {"name": "env-42", "id": 1}
    # count_calls is not: the recorded result is the second run's, exposing the side effect.
    assert PROBE.calls["count:env-42"] == 2
    assert status.output["count"] == 2


def test_replay_activity_reruns_a_recorded_activity_without_touching_history(engine: DurableEngine) -> None:
    instance_id = engine.start("provision", "env-7")
    engine.run_until_idle()
    before = engine.status(instance_id)
    assert before is not None
    recorded = {e["TaskScheduledId"]: e["Result"] for e in before.history if e["EventType"] == 5}

    again_create = engine.replay_activity(instance_id, 0)
    again_count = engine.replay_activity(instance_id, 1)

    assert again_create.ok and again_create.result_json == recorded[0]  # idempotent
    assert again_count.ok and again_count.result_json != recorded[1]  # not idempotent: caught
    after = engine.status(instance_id)
    assert after is not None
    assert after.history == before.history
