"""The Durable HTTP API, exercised through the SDK's own DurableOrchestrationClient."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import azure.durable_functions as df
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.durable_functions.models.utils import http_utils

from devhost.host.durable.clock import RealClock
from devhost.host.durable.engine import DurableEngine
from devhost.host.durable_api import DEFAULT_PREFIX, add_routes, client_binding_json
from tests.engine.conftest import EngineFactory

Scenario = Callable[[df.DurableOrchestrationClient, DurableEngine, str], Awaitable[None]]


@asynccontextmanager
async def serving(engine: DurableEngine) -> AsyncIterator[str]:
    """Serve the API on a free 127.0.0.1 port; yields the base URL of the API."""
    app = web.Application()
    add_routes(app, engine, DEFAULT_PREFIX, task_hub="TestHub")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(DEFAULT_PREFIX))
    finally:
        await server.close()


def run_scenario(make_engine: EngineFactory, scenario: Scenario) -> None:
    engine = make_engine(clock=RealClock(), max_workers=4)

    async def main() -> None:
        with engine:
            async with serving(engine) as base_url:
                client = df.DurableOrchestrationClient(client_binding_json(base_url, "TestHub"))
                try:
                    await scenario(client, engine, base_url)
                finally:
                    # The SDK keeps one module-level session; close it inside this loop.
                    await http_utils._close_session()

    asyncio.run(main())


async def until_done(client: df.DurableOrchestrationClient, instance_id: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = await client.get_status(instance_id)
        if status.runtime_status in (
            OrchestrationRuntimeStatus.Completed,
            OrchestrationRuntimeStatus.Failed,
            OrchestrationRuntimeStatus.Terminated,
        ):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{instance_id} still {status.runtime_status}")
        await asyncio.sleep(0.02)


def test_start_new_and_get_status(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        instance_id = await client.start_new("greet_sequence", client_input=["Ann", "Bob"])
        assert len(instance_id) == 32

        status = await until_done(client, instance_id)

        assert status.runtime_status == OrchestrationRuntimeStatus.Completed
        assert status.output == ["Hello Ann", "Hello Bob"]
        assert status.name == "greet_sequence"
        assert json.loads(status.input_) == ["Ann", "Bob"]  # the host shows the client's JSON text
        assert status.created_time is not None

    run_scenario(make_engine, scenario)


def test_status_with_history(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        instance_id = await client.start_new("greet_sequence", client_input=["Cy"])
        await until_done(client, instance_id)

        status = await client.get_status(instance_id, show_history=True, show_history_output=True)

        events = status.historyEvents  # the host's key, passed through by the SDK
        assert [e["EventType"] for e in events] == ["ExecutionStarted", "TaskCompleted", "ExecutionCompleted"]
        assert events[0]["FunctionName"] == "greet_sequence"
        assert events[1]["FunctionName"] == "greet"
        assert events[1]["Result"] == "Hello Cy"
        assert "ScheduledTime" in events[1]
        quiet = await client.get_status(instance_id, show_history=True)
        assert "Result" not in quiet.historyEvents[1]

    run_scenario(make_engine, scenario)


def test_raise_event_and_custom_status(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        instance_id = await client.start_new("approval", instance_id="approve-1")
        assert instance_id == "approve-1"
        for _ in range(500):
            status = await client.get_status(instance_id)
            if status.custom_status == "waiting for approval":
                break
            await asyncio.sleep(0.01)
        assert status.runtime_status == OrchestrationRuntimeStatus.Running
        assert status.custom_status == "waiting for approval"

        await client.raise_event(instance_id, "Approval", {"user": "ann"})

        done = await until_done(client, instance_id)
        # As on the real host: the Python client JSON-encodes event data before posting it,
        # so the orchestrator receives the JSON text, not the dict.
        assert done.output == {"approved_by": json.dumps({"user": "ann"})}
        assert done.custom_status == "approved"
        with pytest.raises(Exception, match="is gone"):
            await client.raise_event(instance_id, "Approval", "again")
        with pytest.raises(Exception, match="No instance"):
            await client.raise_event("missing", "Approval", 1)

    run_scenario(make_engine, scenario)


def test_terminate_and_duplicate_start(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        instance_id = await client.start_new("approval", instance_id="env-9")
        with pytest.raises(Exception, match="already exists"):
            await client.start_new("approval", instance_id="env-9")

        await client.terminate(instance_id, "user deleted it")

        status = await until_done(client, instance_id)
        assert status.runtime_status == OrchestrationRuntimeStatus.Terminated
        assert status.output == "user deleted it"
        await client.terminate(instance_id, "again")  # 410 Gone: the client treats it as done
        with pytest.raises(Exception, match="No instance"):
            await client.terminate("missing", "x")
        # A terminated id may be started again.
        assert await client.start_new("greet_sequence", instance_id="env-9", client_input=["new"]) == "env-9"
        assert (await until_done(client, "env-9")).output == ["Hello new"]

    run_scenario(make_engine, scenario)


def test_unknown_orchestrator_and_unknown_instance(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        with pytest.raises(Exception, match="'nope' doesn't exist"):
            await client.start_new("nope")
        status = await client.get_status("never-started")
        assert not status  # the SDK's "no such instance"

    run_scenario(make_engine, scenario)


def test_list_filter_and_purge(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        done_id = await client.start_new("greet_sequence", instance_id="batch-done", client_input=["x"])
        await until_done(client, done_id)
        await client.start_new("approval", instance_id="batch-waiting")

        everything = await client.get_status_all()
        completed = await client.get_status_by(runtime_status=[OrchestrationRuntimeStatus.Completed])
        prefixed = await client.get_status_by(instance_id_prefix="batch-w")

        assert {s.instance_id for s in everything} == {"batch-done", "batch-waiting"}
        assert [s.instance_id for s in completed] == ["batch-done"]
        assert [s.instance_id for s in prefixed] == ["batch-waiting"]

        purged = await client.purge_instance_history(done_id)
        assert purged.instances_deleted == 1
        assert not await client.get_status(done_id)
        assert (await client.purge_instance_history(done_id)).instances_deleted == 0
        with pytest.raises(Exception, match="412"):
            await client.purge_instance_history("batch-waiting")  # still running

    run_scenario(make_engine, scenario)


def test_check_status_payload_and_raw_http(make_engine: EngineFactory) -> None:
    async def scenario(client: df.DurableOrchestrationClient, engine: DurableEngine, base_url: str) -> None:
        payload = client.create_http_management_payload("abc")
        assert payload["statusQueryGetUri"].startswith(f"{base_url}/instances/abc?taskHub=TestHub")
        async with aiohttp.ClientSession() as session:
            # Other clients must post the input the way the Python client does: as JSON text.
            async with session.post(
                f"{base_url}/orchestrators/fan_out_fan_in", json=json.dumps(3)
            ) as response:
                assert response.status == 202
                body = await response.json()
                assert response.headers["Location"] == body["statusQueryGetUri"]
            result = await until_done(client, body["id"])
            assert result.output == {"squares": [0, 1, 4], "total": 5}
            # A bare JSON number reaches the SDK as a number, which get_input() cannot decode
            # (the real host behaves the same way).
            async with session.post(f"{base_url}/orchestrators/fan_out_fan_in", json=3) as response:
                bare = await until_done(client, (await response.json())["id"])
            assert bare.runtime_status == OrchestrationRuntimeStatus.Failed
            async with session.post(
                f"{base_url}/orchestrators/fan_out_fan_in", data=b"{not json"
            ) as response:
                assert response.status == 400
            async with session.get(
                f"{base_url}/instances/{body['id']}?returnInternalServerErrorOnFailure=true"
            ) as r:
                assert r.status == 200
            async with session.post(f"{base_url}/instances/{body['id']}/suspend") as response:
                assert response.status == 501

    run_scenario(make_engine, scenario)
