"""Starting the orchestration that carries out a record's current operation (API and timers)."""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df

from orchestrators import jobs
from shared import wiring
from shared.domain import operation
from shared.domain.environment import Environment
from shared.settings import get_settings

log = logging.getLogger("dev8.launch")
ALIVE = {"Pending", "Running", "ContinuedAsNew", "Suspended"}
LAUNCH_CONCURRENCY = 16


async def launch(client: df.DurableOrchestrationClient, env: Environment) -> bool:
    """Start the orchestration that carries out the record's current operation.

    The one policy for an orchestration that cannot be started (the Durable backend refuses or
    cannot be reached), whoever asked (the API, a sweep, the reconciler): the record settles as
    failed at once, ERROR with a reason the user can act on, so it never waits in a transitional
    status for an orchestration that is not there. A start that did reach the backend finds the
    record settled and changes nothing; compute it leaves under ERROR, the reconciler stops.
    Returns whether the orchestration started."""
    run = jobs.run_of(env, get_settings())
    try:
        await client.start_new(run["orchestrator"], instance_id=run["instance_id"], client_input=run["input"])
        return True
    except Exception as exc:
        log.error("could not start %s for %s (%s)", env.operation, env.id, type(exc).__name__)
    try:
        await asyncio.to_thread(wiring.environments().launch_failed, env)
    except Exception as exc:  # tables down too: the record stays transitional, the reconciler's to settle
        log.error("could not settle %s after a failed start (%s)", env.id, type(exc).__name__)
    return False


async def launch_all(client: df.DurableOrchestrationClient, envs: list[Environment]) -> int:
    """Launch each, LAUNCH_CONCURRENCY at a time (one failure does not stop the rest); returns
    how many started. A sweep's thousand stops are a thousand calls to the Durable backend."""
    gate = asyncio.Semaphore(LAUNCH_CONCURRENCY)

    async def one(env: Environment) -> bool:
        async with gate:
            return await launch(client, env)

    return sum(await asyncio.gather(*(one(env) for env in envs)))


async def forget(client: df.DurableOrchestrationClient, owner: str) -> bool:
    """Start the erasure of everything held about `owner` (DELETE /me), unless it runs already:
    one per owner at a time. False when it neither runs nor could be started."""
    instance = operation.forget_instance_id(owner)
    if await is_running(client, instance):
        return True
    try:
        await client.start_new(
            operation.FORGET, instance_id=instance, client_input=jobs.forget_job(owner, get_settings())
        )
        return True
    except Exception as exc:  # started by a request racing this one, or Durable is down
        if await is_running(client, instance):
            return True
        log.error("could not start the erasure (%s)", type(exc).__name__)
        return False


async def is_running(client: df.DurableOrchestrationClient, instance: str) -> bool:
    status = await client.get_status(instance)
    runtime = getattr(status, "runtime_status", None)
    return getattr(runtime, "value", runtime) in ALIVE


def alive_checker(client: df.DurableOrchestrationClient, loop: asyncio.AbstractEventLoop):  # type: ignore[no-untyped-def]
    """A blocking `operation_alive` for the reconciler, which runs in a worker thread."""

    def alive(instance: str) -> bool:
        return asyncio.run_coroutine_threadsafe(is_running(client, instance), loop).result(60)

    return alive
