"""Starting the orchestration that carries out a record's current operation (API and timers)."""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df

from orchestrators import jobs
from shared.domain.environment import Environment
from shared.domain.operation import instance_id, orchestrator
from shared.settings import get_settings

log = logging.getLogger("dev8.launch")
ALIVE = {"Pending", "Running", "ContinuedAsNew", "Suspended"}


async def launch(client: df.DurableOrchestrationClient, env: Environment, **extra: object) -> None:
    assert env.operation is not None
    job = {**jobs.job_for(env, get_settings()), **extra}
    await client.start_new(
        orchestrator(env.operation), instance_id=instance_id(env.operation, env.redrives), client_input=job
    )


async def launch_all(client: df.DurableOrchestrationClient, envs: list[Environment], **extra: object) -> int:
    """Start each orchestration; a failure is logged and left to the reconciler. Returns starts."""
    started = 0
    for env in envs:
        try:
            await launch(client, env, **extra)
            started += 1
        except Exception as exc:
            log.warning("could not start %s for %s (%s)", env.operation, env.id, type(exc).__name__)
    return started


async def is_running(client: df.DurableOrchestrationClient, instance: str) -> bool:
    status = await client.get_status(instance)
    runtime = getattr(status, "runtime_status", None)
    return getattr(runtime, "value", runtime) in ALIVE


def alive_checker(client: df.DurableOrchestrationClient, loop: asyncio.AbstractEventLoop):  # type: ignore[no-untyped-def]
    """A blocking `operation_alive` for the reconciler, which runs in a worker thread."""

    def alive(instance: str) -> bool:
        return asyncio.run_coroutine_threadsafe(is_running(client, instance), loop).result(60)

    return alive
