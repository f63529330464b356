"""Episodes through the real SDK: sequences, fan-out/fan-in, status, events, termination, failures."""

from __future__ import annotations

import asyncio
import json

import pytest
from azure.durable_functions.models.ReplaySchema import ReplaySchema

from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import (
    DurableEngine,
    InstanceExistsError,
    InstanceNotRunningError,
    RuntimeStatus,
    UnknownOrchestratorError,
)
from tests.engine.conftest import START, EngineFactory, action_events, run_to_completion, status_of
from tests.engine.toy_app import PROBE

ALL_SCHEMAS = pytest.mark.parametrize("schema", [ReplaySchema.V1, ReplaySchema.V2, ReplaySchema.V3])


@ALL_SCHEMAS
def test_sequence_of_activities_runs_in_order(make_engine: EngineFactory, schema: ReplaySchema) -> None:
    engine = make_engine(replay_schema=schema)
    instance_id = engine.start("greet_sequence", ["Tokyo", "Seattle", "London"])

    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == ["Hello Tokyo", "Hello Seattle", "Hello London"]
    assert action_events(status.history) == [
        ("TaskScheduled", 0),
        ("TaskCompleted", 0),
        ("TaskScheduled", 1),
        ("TaskCompleted", 1),
        ("TaskScheduled", 2),
        ("TaskCompleted", 2),
    ]
    scheduled = [e for e in status.history if e["EventType"] == 4]
    assert [json.loads(e["Input"]) for e in scheduled] == ["Tokyo", "Seattle", "London"]


def test_history_has_the_shape_the_extension_sends(engine: DurableEngine) -> None:
    instance_id = engine.start("greet_sequence", ["Ann"])
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    types = [e["EventType"] for e in status.history]
    # OrchestratorStarted, ExecutionStarted, TaskScheduled, OrchestratorCompleted, then the
    # completion episode, closed by ExecutionCompleted.
    assert types == [12, 0, 4, 13, 12, 5, 1, 13]
    started = status.history[1]
    assert started["Name"] == "greet_sequence"
    assert started["OrchestrationInstance"]["InstanceId"] == instance_id
    assert json.loads(json.loads(started["Input"])) == ["Ann"]  # stored as the Python client sends it
    assert status.history[6]["OrchestrationStatus"] == "Completed"
    assert all(e["Timestamp"].endswith("Z") for e in status.history)


@ALL_SCHEMAS
def test_fan_out_fan_in_schedules_every_branch_in_one_episode(
    make_engine: EngineFactory, schema: ReplaySchema
) -> None:
    engine = make_engine(replay_schema=schema)
    instance_id = engine.start("fan_out_fan_in", 5)

    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.output == {"squares": [0, 1, 4, 9, 16], "total": 30}
    first_episode_end = [e["EventType"] for e in status.history].index(13)
    first_episode = status.history[:first_episode_end]
    assert [e["EventId"] for e in first_episode if e["EventType"] == 4] == [0, 1, 2, 3, 4]
    assert ("TaskScheduled", 5) in action_events(status.history)  # sum_all comes after the fan-in


def test_custom_status_is_visible_while_running(engine: DurableEngine) -> None:
    instance_id = engine.start("approval")
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.RUNNING
    assert status.custom_status == "waiting for approval"

    engine.raise_event(instance_id, "Approval", {"user": "ann"})
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.custom_status == "approved"


def test_raise_event_resumes_the_waiting_orchestrator(engine: DurableEngine) -> None:
    instance_id = engine.start("approval")
    engine.run_until_idle()

    engine.raise_event(instance_id, "Approval", {"user": "ann", "level": 2})
    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == {"approved_by": {"user": "ann", "level": 2}}
    raised = [e for e in status.history if e["EventType"] == 15]
    assert [(e["Name"], json.loads(e["Input"])) for e in raised] == [
        ("Approval", {"user": "ann", "level": 2})
    ]


def test_an_event_raised_before_the_first_episode_is_buffered(engine: DurableEngine) -> None:
    instance_id = engine.start("approval")
    engine.raise_event(instance_id, "Approval", "early bird")
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.output == {"approved_by": "early bird"}


def test_terminate_stops_the_instance_and_refuses_more_events(engine: DurableEngine) -> None:
    instance_id = engine.start("approval")
    engine.run_until_idle()

    engine.terminate(instance_id, "user cancelled")

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.TERMINATED
    assert status.output == "user cancelled"
    assert 3 in [e["EventType"] for e in status.history]  # ExecutionTerminated
    with pytest.raises(InstanceNotRunningError):
        engine.raise_event(instance_id, "Approval", "too late")
    with pytest.raises(InstanceNotRunningError):
        engine.terminate(instance_id, "again")
    engine.run_until_idle()
    assert status_of(engine, instance_id).runtime_status == RuntimeStatus.TERMINATED


def test_an_orchestrator_exception_fails_the_instance_with_a_short_message(engine: DurableEngine) -> None:
    instance_id = engine.start("explodes")
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.FAILED
    assert status.output == "Orchestrator function 'explodes' failed: kaboom"
    assert "Traceback" not in json.dumps(status.history)


def test_calling_an_unknown_activity_fails_clearly(engine: DurableEngine) -> None:
    instance_id = engine.start("calls_missing_activity")
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.FAILED
    assert "'no_such_activity' doesn't exist" in status.output


def test_changed_orchestrator_code_is_reported_as_non_determinism(engine: DurableEngine) -> None:
    instance_id = engine.start("changes_its_mind")
    engine.run_until_idle()  # greet ran; now waiting for "go"
    PROBE.variant = "b"  # the "new deployment" would schedule square instead

    engine.raise_event(instance_id, "go")
    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.FAILED
    assert "Non-deterministic workflow detected" in status.output
    assert "activity 'greet'" in status.output
    assert "activity 'square'" in status.output


def test_an_activity_failure_reaches_the_orchestrator_as_message_and_type(
    engine: DurableEngine, clock: ManualClock
) -> None:
    instance_id = engine.start("retry_then_clean_up", {"key": "short", "failures": 5})
    run_to_completion(engine, clock, instance_id)
    status = engine.status(instance_id)
    assert status is not None
    failed = [e for e in status.history if e["EventType"] == 6]
    assert [(e["Reason"], e["Details"]) for e in failed] == [
        ("boom #1", "ValueError"),
        ("boom #2", "ValueError"),
    ]
    assert status.output["caught"] == "boom #2 \n ValueError"


def test_start_refuses_unknown_orchestrators_and_running_duplicates(engine: DurableEngine) -> None:
    with pytest.raises(UnknownOrchestratorError):
        engine.start("nope")
    engine.start("approval", instance_id="env-1")
    engine.run_until_idle()
    with pytest.raises(InstanceExistsError):
        engine.start("approval", instance_id="env-1")

    engine.terminate("env-1", "done")
    engine.start("greet_sequence", ["again"], instance_id="env-1")  # a finished id may be reused
    engine.run_until_idle()
    status = engine.status("env-1")
    assert status is not None
    assert status.name == "greet_sequence"
    assert status.output == ["Hello again"]


def test_sub_orchestrations_report_results_and_failures_to_the_parent(engine: DurableEngine) -> None:
    instance_id = engine.start("parent_of_children", instance_id="parent")
    engine.run_until_idle()

    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output["greetings"] == ["Hello kid"]
    assert status.output["failure"].startswith("Orchestrator function 'explodes' failed: kaboom")
    child = engine.status("parent-child")
    assert child is not None
    assert child.parent_instance_id == "parent"
    assert child.runtime_status == RuntimeStatus.COMPLETED
    failed_child = engine.list_instances(statuses=[RuntimeStatus.FAILED])
    assert [s.parent_instance_id for s in failed_child] == ["parent"]


def test_continue_as_new_restarts_with_fresh_history(engine: DurableEngine) -> None:
    instance_id = engine.start("countdown", 3)
    engine.run_until_idle()
    status = engine.status(instance_id)
    assert status is not None
    assert status.runtime_status == RuntimeStatus.COMPLETED
    assert status.output == "liftoff"
    assert PROBE.calls["greet:round 3"] == PROBE.calls["greet:round 1"] == 1
    # Only the last generation's history is kept: it scheduled nothing.
    assert action_events(status.history) == []
    assert json.loads(json.loads(status.history[1]["Input"])) == 0


def test_current_utc_datetime_comes_from_the_engine_clock(engine: DurableEngine) -> None:
    engine.start("long_sleep", 1)
    engine.run_until_idle()
    assert engine.next_timer_at() == START.replace(day=2)


def test_async_activities_run_inline_even_under_a_running_event_loop(engine: DurableEngine) -> None:
    first = engine.start("greet_async", "sync caller")
    engine.run_until_idle()

    async def from_a_coroutine() -> str:
        instance_id = engine.start("greet_async", "async caller")
        engine.run_until_idle()  # an async activity cannot use this loop: it gets its own
        return instance_id

    second = asyncio.run(from_a_coroutine())
    assert status_of(engine, first).output == "Hi sync caller"
    assert status_of(engine, second).output == "Hi async caller"


def test_terminating_a_pending_instance_keeps_its_start_in_history(engine: DurableEngine) -> None:
    instance_id = engine.start("greet_sequence", ["never"])
    engine.terminate(instance_id, "changed my mind")
    engine.run_until_idle()
    status = status_of(engine, instance_id)
    assert status.runtime_status == RuntimeStatus.TERMINATED
    assert [e["EventType"] for e in status.history] == [12, 0, 3, 1, 13]
    assert PROBE.calls["greet:never"] == 0
