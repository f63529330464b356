"""Toy orchestrators and activities for the engine tests (never the product's orchestrators).

They live on a ``df.Blueprint`` registered into a ``df.DFApp``, like the real app does. Activity
side effects go to ``PROBE`` so tests can count executions; ``GATES`` lets a test hold an
activity inside the worker pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from devhost.host.durable.registry import FunctionRegistry


class Probe:
    """Thread-safe record of activity side effects."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.resources: dict[str, int] = {}
        self.variant = "a"

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.resources.clear()
            self.variant = "a"

    def hit(self, key: str) -> int:
        with self.lock:
            self.calls[key] += 1
            return self.calls[key]


# What an orchestrator generator is: yields SDK tasks, receives their results, returns its output.
Orchestration = Generator[Any, Any, Any]

PROBE = Probe()
GATES: dict[str, threading.Event] = {}
ENTERED: dict[str, threading.Event] = {}
BARRIERS: dict[str, threading.Barrier] = {}

bp = df.Blueprint()


# ---------------------------------------------------------------------------- activities
@bp.activity_trigger(input_name="name")
def greet(name: str) -> str:
    PROBE.hit(f"greet:{name}")
    return f"Hello {name}"


@bp.activity_trigger(input_name="number")
def square(number: int) -> int:
    return number * number


@bp.activity_trigger(input_name="numbers")
def sum_all(numbers: list[int]) -> int:
    return sum(numbers)


@bp.activity_trigger(input_name="job")
def flaky(job: dict[str, Any]) -> str:
    """Fails ``job["failures"]`` times for ``job["key"]``, then succeeds."""
    attempt = PROBE.hit(f"flaky:{job['key']}")
    if attempt <= job["failures"]:
        raise ValueError(f"boom #{attempt}")
    return f"ok after {attempt} attempts"


@bp.activity_trigger(input_name="job")
def is_ready(job: dict[str, Any]) -> bool:
    return PROBE.hit(f"poll:{job['key']}") >= job["target"]


@bp.activity_trigger(input_name="gate")
def gated_work(gate: str) -> str:
    ENTERED.setdefault(gate, threading.Event()).set()
    PROBE.hit(f"gated:{gate}")
    if not GATES.setdefault(gate, threading.Event()).wait(timeout=20):
        raise TimeoutError(f"gate {gate} never opened")
    return f"worked {gate}"


@bp.activity_trigger(input_name="barrier")
def meet_at_barrier(barrier: str) -> str:
    # Only passes when all parties run at the same time: proves the worker pool is concurrent.
    BARRIERS[barrier].wait()  # the barrier carries its own timeout
    return "met"


@bp.activity_trigger(input_name="name")
async def async_greet(name: str) -> str:
    await asyncio.sleep(0)
    return f"Hi {name}"


@bp.activity_trigger(input_name="name")
def create_resource(name: str) -> dict[str, Any]:
    """Idempotent: create-if-absent, returns the same answer however often it runs."""
    PROBE.hit(f"create:{name}")
    with PROBE.lock:
        PROBE.resources.setdefault(name, len(PROBE.resources) + 1)
        return {"name": name, "id": PROBE.resources[name]}


@bp.activity_trigger(input_name="name")
def count_calls(name: str) -> int:
    """Not idempotent: returns how many times it has run."""
    return PROBE.hit(f"count:{name}")


# ---------------------------------------------------------------------------- orchestrators
@bp.orchestration_trigger(context_name="context")
def greet_sequence(context: df.DurableOrchestrationContext) -> Orchestration:
    results = []
    for name in context.get_input():
        results.append((yield context.call_activity("greet", name)))
    return results


@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext) -> Orchestration:
    squares = yield context.task_all([context.call_activity("square", n) for n in range(context.get_input())])
    total = yield context.call_activity("sum_all", squares)
    return {"squares": squares, "total": total}


@bp.orchestration_trigger(context_name="context")
def retry_flaky(context: df.DurableOrchestrationContext) -> Orchestration:
    job = context.get_input()
    options = df.RetryOptions(
        first_retry_interval_in_milliseconds=30_000, max_number_of_attempts=job["attempts"]
    )
    return (yield context.call_activity_with_retry("flaky", options, job))


@bp.orchestration_trigger(context_name="context")
def retry_then_clean_up(context: df.DurableOrchestrationContext) -> Orchestration:
    job = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1_000, max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry("flaky", options, job)
    except Exception as exc:
        cleanup = yield context.call_activity("greet", "cleanup")
        return {"caught": str(exc), "cleanup": cleanup}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def parallel_retries(context: df.DurableOrchestrationContext) -> Orchestration:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1_000, max_number_of_attempts=3)
    jobs = [{"key": f"{context.instance_id}-{i}", "failures": 1} for i in range(3)]
    results = yield context.task_all([context.call_activity_with_retry("flaky", options, j) for j in jobs])
    after = yield context.call_activity("greet", "after")
    return [*results, after]


@bp.orchestration_trigger(context_name="context")
def poll_until_ready(context: df.DurableOrchestrationContext) -> Orchestration:
    job = context.get_input()
    polls = 0
    while True:
        ready = yield context.call_activity("is_ready", job)
        polls += 1
        if ready:
            return {"polls": polls, "finished_at": context.current_utc_datetime.isoformat()}
        context.set_custom_status({"polls": polls})
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))


@bp.orchestration_trigger(context_name="context")
def deadline_race(context: df.DurableOrchestrationContext) -> Orchestration:
    job = context.get_input()
    deadline = context.create_timer(context.current_utc_datetime + timedelta(minutes=job["minutes"]))
    work = context.call_activity("gated_work", job["gate"])
    winner = yield context.task_any([work, deadline])
    if winner == work:
        deadline.cancel()
        return {"result": work.result}
    return {"result": "timed out"}


@bp.orchestration_trigger(context_name="context")
def long_sleep(context: df.DurableOrchestrationContext) -> Orchestration:
    yield context.create_timer(context.current_utc_datetime + timedelta(days=context.get_input()))
    return context.current_utc_datetime.isoformat()


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Orchestration:
    context.set_custom_status("waiting for approval")
    decision = yield context.wait_for_external_event("Approval")
    context.set_custom_status("approved")
    return {"approved_by": decision}


@bp.orchestration_trigger(context_name="context")
def event_or_timeout(context: df.DurableOrchestrationContext) -> Orchestration:
    deadline = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    go = context.wait_for_external_event("Go")
    winner = yield context.task_any([go, deadline])
    if winner == go:
        deadline.cancel()
        outcome = f"go {go.result}"
    else:
        outcome = "timeout"
    return (yield context.call_activity("greet", outcome))


@bp.orchestration_trigger(context_name="context")
def explodes(context: df.DurableOrchestrationContext) -> Orchestration:
    yield context.call_activity("greet", "before the crash")
    raise RuntimeError("kaboom")


@bp.orchestration_trigger(context_name="context")
def calls_missing_activity(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield context.call_activity("no_such_activity", 1))


@bp.orchestration_trigger(context_name="context")
def changes_its_mind(context: df.DurableOrchestrationContext) -> Orchestration:
    # Deliberately non-deterministic: which activity runs depends on module state.
    yield context.call_activity("greet" if PROBE.variant == "a" else "square", 2)
    yield context.wait_for_external_event("go")
    return "done"


@bp.orchestration_trigger(context_name="context")
def gated_sequence(context: df.DurableOrchestrationContext) -> Orchestration:
    worked = yield context.call_activity("gated_work", context.get_input())
    greeting = yield context.call_activity("greet", "after gate")
    return [worked, greeting]


@bp.orchestration_trigger(context_name="context")
def concurrent_fan_out(context: df.DurableOrchestrationContext) -> Orchestration:
    barrier = context.get_input()
    results = yield context.task_all([context.call_activity("meet_at_barrier", barrier) for _ in range(3)])
    greeting = yield context.call_activity("async_greet", "pool")
    return [*results, greeting]


@bp.orchestration_trigger(context_name="context")
def greet_async(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield context.call_activity("async_greet", context.get_input()))


@bp.orchestration_trigger(context_name="context")
def provision(context: df.DurableOrchestrationContext) -> Orchestration:
    name = context.get_input()
    resource = yield context.call_activity("create_resource", name)
    count = yield context.call_activity("count_calls", name)
    return {"resource": resource, "count": count}


@bp.orchestration_trigger(context_name="context")
def parent_of_children(context: df.DurableOrchestrationContext) -> Orchestration:
    greetings = yield context.call_sub_orchestrator("greet_sequence", ["kid"], f"{context.instance_id}-child")
    try:
        yield context.call_sub_orchestrator("explodes")
        failure = None
    except Exception as exc:
        failure = str(exc)
    return {"greetings": greetings, "failure": failure}


@bp.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield context.call_activity("flaky", context.get_input()))


@bp.orchestration_trigger(context_name="context")
def parent_retrying_child(context: df.DurableOrchestrationContext) -> Orchestration:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
    job = {"key": context.instance_id, "failures": 1}
    return (yield context.call_sub_orchestrator_with_retry("flaky_child", options, job))


@bp.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext) -> Orchestration:
    remaining = context.get_input()
    if remaining > 0:
        yield context.call_activity("greet", f"round {remaining}")
        context.continue_as_new(remaining - 1)
        return None
    return "liftoff"


def build_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(bp)
    return app


# get_functions() may run only once per app: one registry serves every engine in the tests.
REGISTRY = FunctionRegistry.from_app(build_app())
