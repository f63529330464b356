"""The Durable Functions HTTP API (webhook/RPC routes of the extension) served by aiohttp.

It is the API ``azure.durable_functions.DurableOrchestrationClient`` talks to, with the status
codes and payloads the real host uses:

====================================================  =========================================
POST   {base}/orchestrators/{name}[/{instanceId}]      202 management payload; 400 unknown
                                                       orchestrator; 409 id exists and is not
                                                       terminal (the default NonRunningStates)
GET    {base}/instances/{id}                           200 done / 202 running (+Location) /
                                                       404; showHistory, showHistoryOutput,
                                                       showInput, returnInternalServerErrorOnFailure
GET    {base}/instances/                               200 list; instanceIdPrefix, createdTimeFrom,
                                                       createdTimeTo, runtimeStatus, showInput, top
POST   {base}/instances/{id}/terminate?reason=         202; 404; 410 already finished
POST   {base}/instances/{id}/raiseEvent/{name}         202; 404; 410; 400 not application/json
POST   {base}/instances/{id}/restart                   202 management payload
DELETE {base}/instances/{id}                           200 {"instancesDeleted": 1}; 404; 412 running
DELETE {base}/instances/?createdTimeFrom=...           200 {"instancesDeleted": n}; 404 none
====================================================  =========================================

With a ``system_key`` every route requires ``?code=<key>`` (401 otherwise), as the real host
protects these webhooks with its durabletask system key; the management URLs it hands out carry
the code (``required_query``), as the host's do. The app's own client reaches the API through
``rpcBaseUrl`` instead, which on the real host is a loopback-only listener.

Payloads keep the host's quirks, because production code meets them too: the Python client
JSON-encodes inputs and event data *before* posting them as JSON, so an orchestration started by
``start_new(name, client_input=x)`` sees ``x`` (the SDK decodes twice), but
``raise_event(id, name, data)`` reaches ``wait_for_external_event`` as the *string*
``json.dumps(data)``. ``DurableEngine.raise_event`` delivers ``data`` itself.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from devhost.host.durable.engine import (
    DurableEngine,
    InstanceExistsError,
    InstanceNotFoundError,
    InstanceNotRunningError,
    UnknownOrchestratorError,
)
from devhost.host.durable.history import parse_time
from devhost.host.durable.instance import InstanceStatus, RuntimeStatus
from devhost.host.durable.status_json import status_payload
from devhost.host.system_key import KeyedRoutes

DEFAULT_PREFIX = "/runtime/webhooks/durabletask"
INSTANCE_ID_PLACEHOLDER = "INSTANCEID"

# Every status name the host understands in runtimeStatus filters (some never occur here).
_KNOWN_STATUSES = {
    "Running",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "Canceled",
    "Terminated",
    "Pending",
    "Suspended",
}


def _query_suffix(task_hub: str, connection_name: str, required_query: str) -> str:
    suffix = f"taskHub={quote(task_hub, safe='')}&connection={quote(connection_name, safe='')}"
    return f"{suffix}&{required_query}" if required_query else suffix


def management_urls(
    base_url: str,
    instance_id: str,
    task_hub: str,
    connection_name: str = "Storage",
    required_query: str = "",
) -> dict[str, str]:
    """The host's HttpManagementPayload for one instance (``id`` plus the operation URLs)."""
    base = base_url.rstrip("/")
    instance = f"{base}/instances/{quote(instance_id, safe='')}"
    suffix = _query_suffix(task_hub, connection_name, required_query)
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{suffix}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{suffix}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{instance}?{suffix}",
        "restartPostUri": f"{instance}/restart?{suffix}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{suffix}",
    }


def client_binding_json(
    base_url: str,
    task_hub: str,
    *,
    connection_name: str = "Storage",
    required_query: str = "",
) -> str:
    """The JSON the Functions host passes for a ``durable_client_input`` binding.

    ``base_url`` is where this API is served, e.g. ``http://127.0.0.1:7071/runtime/webhooks/durabletask``.
    ``DurableOrchestrationClient(client_binding_json(...))`` then works against it.
    """
    base = base_url.rstrip("/")
    create = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
    payload: dict[str, Any] = {
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{create}?{required_query}",
            "createAndWaitOnNewInstancePostUri": (
                f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{required_query}"
            ),
        },
        "managementUrls": management_urls(
            base, INSTANCE_ID_PLACEHOLDER, task_hub, connection_name, required_query
        ),
        "baseUrl": base,
        "requiredQueryStringParameters": required_query,
        # The Python client builds every call on rpcBaseUrl, which must end with "/".
        "rpcBaseUrl": f"{base}/",
        "httpBaseUrl": f"{base}/",
        "connectionName": connection_name,
    }
    return json.dumps(payload)


def _error(status: int, message: str, exc: BaseException | None = None) -> web.Response:
    body: dict[str, Any] = {"Message": message}
    if exc is not None:
        body["ExceptionMessage"] = str(exc)
        body["ExceptionType"] = type(exc).__name__
    return web.json_response(body, status=status)


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return default


def _time_param(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if not value:
        return None
    try:
        return parse_time(value.strip())
    except ValueError:
        return None


def _status_filter(request: web.Request) -> set[RuntimeStatus] | None:
    raw = request.query.get("runtimeStatus")
    if not raw:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip() in _KNOWN_STATUSES]
    if not names:
        return None  # like the host: nothing parseable means no filter
    ours = {s.value for s in RuntimeStatus}
    return {RuntimeStatus(n) for n in names if n in ours}


async def _json_body(request: web.Request) -> tuple[bool, str | None]:
    """(ok, normalized JSON text or None for an empty body)."""
    raw = await request.read()
    if not raw.strip():
        return True, None
    try:
        return True, json.dumps(json.loads(raw))
    except ValueError:
        return False, None


class _DurableApi:
    def __init__(
        self,
        engine: DurableEngine,
        prefix: str,
        task_hub: str,
        connection_name: str,
        required_query: str,
        system_key: str | None = None,
    ) -> None:
        self._system_key = system_key
        self._engine = engine
        self._prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._task_hub = task_hub
        self._connection = connection_name
        self._required_query = required_query

    def _base_url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{self._prefix}"

    def _management(self, request: web.Request, instance_id: str) -> dict[str, str]:
        urls = management_urls(
            self._base_url(request), instance_id, self._task_hub, self._connection, self._required_query
        )
        urls.pop("rewindPostUri")  # the host's check-status payload leaves it out
        return urls

    def _accepted(self, request: web.Request, instance_id: str) -> web.Response:
        payload = self._management(request, instance_id)
        return web.json_response(
            payload,
            status=202,
            headers={"Location": payload["statusQueryGetUri"], "Retry-After": "10"},
        )

    def _status_response(
        self, request: web.Request, status: InstanceStatus, return_500_on_failure: bool
    ) -> web.Response:
        payload = status_payload(
            status,
            show_input=_flag(request, "showInput", True),
            show_history=_flag(request, "showHistory", False),
            show_history_output=_flag(request, "showHistoryOutput", False),
        )
        headers: dict[str, str] = {}
        if status.runtime_status in (RuntimeStatus.PENDING, RuntimeStatus.RUNNING):
            code = 202
            headers = {"Location": str(request.url), "Retry-After": "5"}
        elif status.runtime_status == RuntimeStatus.FAILED and return_500_on_failure:
            code = 500
        else:
            code = 200
        return web.json_response(payload, status=code, headers=headers)

    # -- handlers -----------------------------------------------------------------------------
    async def start(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["function_name"]
        instance_id = request.match_info.get("instance_id") or None
        ok, serialized = await _json_body(request)
        if not ok:
            return _error(400, "Invalid JSON content")
        try:
            instance_id = await asyncio.to_thread(
                self._engine.start_serialized, name, serialized, instance_id
            )
        except UnknownOrchestratorError as exc:
            return _error(400, "One or more of the arguments submitted is incorrect", exc)
        except InstanceExistsError as exc:
            return _error(409, str(exc))
        timeout = request.query.get("timeout")
        if timeout and request.query.get("pollingInterval"):
            return await self._wait_for_completion(request, instance_id, timeout)
        return self._accepted(request, instance_id)

    async def _wait_for_completion(
        self, request: web.Request, instance_id: str, timeout: str
    ) -> web.Response:
        try:
            seconds = float(timeout)
        except ValueError:
            return self._accepted(request, instance_id)
        status = await self._engine.wait_async(instance_id, seconds)
        if status.runtime_status == RuntimeStatus.COMPLETED:
            return web.json_response(status.output, status=200)
        if status.is_terminal:
            return self._status_response(
                request, status, _flag(request, "returnInternalServerErrorOnFailure", False)
            )
        return self._accepted(request, instance_id)

    async def get_status(self, request: web.Request) -> web.StreamResponse:
        status = await asyncio.to_thread(self._engine.status, request.match_info["instance_id"])
        if status is None:
            return web.Response(status=404)
        return self._status_response(
            request, status, _flag(request, "returnInternalServerErrorOnFailure", False)
        )

    async def list_instances(self, request: web.Request) -> web.StreamResponse:
        statuses = await asyncio.to_thread(
            self._engine.list_instances,
            created_from=_time_param(request, "createdTimeFrom"),
            created_to=_time_param(request, "createdTimeTo"),
            statuses=_status_filter(request),
            instance_id_prefix=request.query.get("instanceIdPrefix") or None,
        )
        show_input = _flag(request, "showInput", True)
        start = int(request.headers.get("x-ms-continuation-token") or 0)
        headers: dict[str, str] = {}
        top = request.query.get("top")
        page = statuses[start:]
        if top and top.isdigit() and int(top) > 0 and len(page) > int(top):
            page = page[: int(top)]
            headers["x-ms-continuation-token"] = str(start + int(top))
        body = [status_payload(s, show_input=show_input) for s in page]
        return web.json_response(body, status=200, headers=headers)

    async def terminate(self, request: web.Request) -> web.StreamResponse:
        try:
            await asyncio.to_thread(
                self._engine.terminate, request.match_info["instance_id"], request.query.get("reason")
            )
        except InstanceNotFoundError:
            return web.Response(status=404)
        except InstanceNotRunningError:
            return web.Response(status=410)
        return web.Response(status=202)

    async def raise_event(self, request: web.Request) -> web.StreamResponse:
        instance_id = request.match_info["instance_id"]
        status = await asyncio.to_thread(self._engine.status, instance_id)
        if status is None:
            return web.Response(status=404)
        if status.is_terminal:
            return web.Response(status=410)
        if request.content_type.lower() != "application/json":
            return _error(400, "Only application/json request content is supported")
        ok, serialized = await _json_body(request)
        if not ok:
            return _error(400, "Invalid JSON content")
        try:
            await asyncio.to_thread(
                self._engine.raise_event_serialized,
                instance_id,
                request.match_info["event_name"],
                serialized if serialized is not None else "null",
            )
        except InstanceNotFoundError:
            return web.Response(status=404)
        except InstanceNotRunningError:
            return web.Response(status=410)
        return web.Response(status=202)

    async def operation(self, request: web.Request) -> web.StreamResponse:
        operation = request.match_info["operation"].lower()
        if operation == "terminate":
            return await self.terminate(request)
        if operation == "restart":
            return await self.restart(request)
        if operation in ("suspend", "resume", "rewind"):
            return _error(501, f"'{operation}' is not supported by the local durable engine")
        return web.Response(status=404)

    async def restart(self, request: web.Request) -> web.StreamResponse:
        new_id = _flag(request, "restartWithNewInstanceId", True)
        try:
            instance_id = await asyncio.to_thread(
                self._engine.restart, request.match_info["instance_id"], new_id
            )
        except InstanceNotFoundError as exc:
            return _error(400, "InstanceId does not match a valid orchestration instance.", exc)
        except InstanceExistsError as exc:
            return _error(409, "A non-terminal instance with this instance ID already exists.", exc)
        return self._accepted(request, instance_id)

    async def purge(self, request: web.Request) -> web.StreamResponse:
        try:
            deleted = await asyncio.to_thread(self._engine.purge, request.match_info["instance_id"])
        except InstanceExistsError as exc:
            return web.json_response(str(exc), status=412)
        if not deleted:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": 1}, status=200)

    async def purge_where(self, request: web.Request) -> web.StreamResponse:
        created_from = _time_param(request, "createdTimeFrom")
        if created_from is None:
            return web.json_response("Please provide value for 'createdTimeFrom' parameter.", status=400)
        deleted = await asyncio.to_thread(
            lambda: self._engine.purge_where(
                created_from=created_from,
                created_to=_time_param(request, "createdTimeTo") or datetime.now(UTC),
                statuses=_status_filter(request),
            )
        )
        if deleted == 0:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def not_supported(self, request: web.Request) -> web.StreamResponse:
        return _error(501, "Durable entities are not supported by the local durable engine")

    def route_table(self) -> web.RouteTableDef:
        table = KeyedRoutes(self._system_key)
        p = self._prefix
        table.post(p + "/orchestrators/{function_name}")(self.start)
        table.post(p + "/orchestrators/{function_name}/")(self.start)
        table.post(p + "/orchestrators/{function_name}/{instance_id}")(self.start)
        table.get(p + "/instances")(self.list_instances)
        table.get(p + "/instances/")(self.list_instances)
        table.delete(p + "/instances")(self.purge_where)
        table.delete(p + "/instances/")(self.purge_where)
        # raiseEvent is registered before the generic operation route that would also match it.
        table.post(p + "/instances/{instance_id}/raiseEvent/{event_name}")(self.raise_event)
        table.post(p + "/instances/{instance_id}/{operation}")(self.operation)
        table.get(p + "/instances/{instance_id}")(self.get_status)
        table.delete(p + "/instances/{instance_id}")(self.purge)
        table.route("*", p + "/entities/{tail:.*}")(self.not_supported)
        return table


def routes(
    engine: DurableEngine,
    prefix: str = DEFAULT_PREFIX,
    *,
    task_hub: str = "TestHubName",
    connection_name: str = "Storage",
    required_query: str = "",
    system_key: str | None = None,
) -> web.RouteTableDef:
    """The API's routes under ``prefix``; add them with ``app.add_routes(routes(engine))``."""
    return _DurableApi(engine, prefix, task_hub, connection_name, required_query, system_key).route_table()


def add_routes(
    app: web.Application,
    engine: DurableEngine,
    prefix: str = DEFAULT_PREFIX,
    *,
    task_hub: str = "TestHubName",
    connection_name: str = "Storage",
    required_query: str = "",
    system_key: str | None = None,
) -> None:
    app.add_routes(
        routes(
            engine,
            prefix,
            task_hub=task_hub,
            connection_name=connection_name,
            required_query=required_query,
            system_key=system_key,
        )
    )
