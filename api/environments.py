"""Environment routes. The owner is always the token's `sub`; another owner's environment is 404."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from api import openapi, paging, views
from api.contract import Operation, Query, Reply, route
from api.http import (
    blocking,
    count_param,
    handle,
    handle_async,
    owner_of,
    parse_body,
    principal_of,
    principal_of_async,
    respond,
)
from api.views import (
    ConnectionView,
    EnvironmentBody,
    EnvironmentList,
    EventList,
    Logs,
    connection_view,
    environment_view,
    event_view,
)
from orchestrators.launch import launch
from shared import wiring
from shared.agent_tokens import PREFIX as AGENT_PREFIX
from shared.domain.environment import Environment, Status
from shared.domain.lifecycle import Command
from shared.domain.logs import DEFAULT_TAIL, MAX_TAIL, LogSource, scrub, tail_lines
from shared.domain.rate_limits import Limit
from shared.domain.requests import CreateEnvironmentRequest, UpdateEnvironmentRequest
from shared.domain.resources import compute_name
from shared.errors import Unavailable, ValidationFailed
from shared.services.environments import CommandResult

bp = df.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger("dev8.api")

ENVIRONMENT = "v1/environments/{environment_id}"
MAX_IDEMPOTENCY_KEY = 128
AGENT_TOKEN_PREFIX = AGENT_PREFIX + "."
TAG = "environments"
# What a client can do next with the environment an answer names (OpenAPI links, which
# schemathesis follows to walk create -> get -> stop -> start -> delete).
NEXT = {
    "get": "getEnvironment",
    "stop": "stopEnvironment",
    "start": "startEnvironment",
    "delete": "deleteEnvironment",
    "connection": "getConnection",
    "events": "listEvents",
    "snapshots": "listSnapshots",
}
CREATED = Reply(
    "Created (or, for a repeated Idempotency-Key with the same body, the environment it made).",
    EnvironmentBody,
    ("Location",),
    example=openapi.environment_example,
)
ONE = Reply("The environment.", EnvironmentBody, example=openapi.environment_example)
NEXT_PAGE = Query(
    "next", "The `next` of the previous page.", {"type": "string", "maxLength": paging.MAX_TOKEN}
)


def page_size(then: str) -> Query:
    schema = {"type": "integer", "minimum": 1, "maximum": paging.MAX_LIMIT}
    return Query("limit", f"Page size (1-{paging.MAX_LIMIT}); the answer then has `next`{then}", schema, 20)


ACCEPTED = Reply(
    "Accepted: the environment is in its transitional status; poll it.",
    EnvironmentBody,
    example=lambda: openapi.environment_example(Status.STOPPING),
)
UNCHANGED = Reply(
    "Already there (RUNNING for a start, STOPPED for a stop): nothing was started. While another "
    "operation is under way (a transitional status), any command is 409 INVALID_STATE: wait for it.",
    EnvironmentBody,
    example=openapi.environment_example,
)


def one_environment(
    env: Environment, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return respond(status, {"environment": environment_view(env, wiring.policy(), wiring.utcnow())}, headers)


def created(env: Environment) -> func.HttpResponse:
    """201 with the new environment and where it lives (create, and both restores)."""
    return one_environment(env, 201, {"Location": f"/api/{ENVIRONMENT.format(environment_id=env.id)}"})


async def launch_or_unavailable(client: df.DurableOrchestrationClient, env: Environment) -> Environment:
    """Start the orchestration of an accepted command; when it cannot be started the record has
    settled as failed (orchestrators/launch.py) and the caller is told to try again."""
    if not await launch(client, env):
        raise Unavailable("the orchestration service is unavailable; try again")
    return env


def _idempotency_key(req: func.HttpRequest) -> str | None:
    key: str | None = req.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ValidationFailed(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters")
    return key


@route(
    bp,
    Operation(
        "POST",
        "v1/environments",
        "createEnvironment",
        "Create an environment",
        TAG,
        {201: CREATED},
        body=CreateEnvironmentRequest,
        body_example={"name": "my-app", "template": "node", "size": "small"},
        idempotency_key=True,
        refusals=(403, 409, 503),
        links=NEXT,
        description="Provisioning goes on after the answer: poll the environment until RUNNING.",
    ),
)
@bp.durable_client_input(client_name="client")
async def api_create_environment(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    async def create() -> func.HttpResponse:
        caller = await blocking(lambda: principal_of(req, Limit.COMMAND))
        request = parse_body(req, CreateEnvironmentRequest)
        key = _idempotency_key(req)
        budget = caller.monthly_budget
        result = await blocking(lambda: wiring.environments().create(caller.subject, request, key, budget))
        env = result.environment
        if result.accepted:
            env = await launch_or_unavailable(client, env)
        return created(env)

    return await handle_async(create, req)


@route(
    bp,
    Operation(
        "GET",
        "v1/environments",
        "listEnvironments",
        "List the caller's environments",
        TAG,
        {200: Reply("Oldest first.", EnvironmentList, example=openapi.list_example)},
        query=(
            Query("status", "Only those in this status.", {"type": "string", "enum": views.SHOWN_STATUSES}),
            page_size("."),
            NEXT_PAGE,
        ),
    ),
)
async def api_list_environments(req: func.HttpRequest) -> func.HttpResponse:
    # On the worker's event loop, as the GET of one: the dashboard polls it.
    async def listing() -> func.HttpResponse:
        owner = (await principal_of_async(req)).subject
        wanted = req.params.get("status")
        status = None
        if wanted:
            status = next((s for s in Status if s.value == wanted.upper()), None)
            if status is None or status is Status.DELETED:
                shown = views.SHOWN_STATUSES
                named = repr(wanted) if len(wanted) <= 20 else "(too long to show)"  # not sent back whole
                raise ValidationFailed(
                    f"unknown status {named}", [{"field": "status", "message": f"one of {shown}"}]
                )
        limit = count_param(req, "limit", paging.MAX_LIMIT)
        token = req.params.get("next")
        envs = await wiring.environments().list_async(owner, status)
        policy, now = wiring.policy(), wiring.utcnow()
        if limit is None and token is None:  # the whole list, as it always was
            return respond(200, {"environments": [environment_view(env, policy, now) for env in envs]})
        chosen, following = paging.page(envs, limit or paging.MAX_LIMIT, token)
        return respond(
            200, {"environments": [environment_view(env, policy, now) for env in chosen], "next": following}
        )

    return await handle_async(listing, req)


@route(
    bp, Operation("GET", ENVIRONMENT, "getEnvironment", "Get one environment", TAG, {200: ONE}, links=NEXT)
)
async def api_get_environment(req: func.HttpRequest) -> func.HttpResponse:
    # On the worker's event loop, not a thread: the most frequent call (every client polls it).
    async def get() -> func.HttpResponse:
        owner = (await principal_of_async(req)).subject
        env = await wiring.environments().get_async(owner, req.route_params["environment_id"])
        return one_environment(env)

    return await handle_async(get, req)


@route(
    bp,
    Operation(
        "PATCH",
        ENVIRONMENT,
        "updateEnvironment",
        "Rename it, change its idle timeout, keep it from retention, or resize it",
        TAG,
        {
            200: ONE,
            202: Reply(
                "Resized with `restart: true` while RUNNING: it is STOPPING, and starts again with "
                "the new size; poll it.",
                EnvironmentBody,
                example=lambda: openapi.environment_example(Status.STOPPING),
            ),
        },
        body=UpdateEnvironmentRequest,
        body_example={"idle_timeout_minutes": 60, "keep": True},
        refusals=(403, 409, 503),
        links=NEXT,
        description="A new `size` (or `cpu_cores`, `memory_gb`, `storage_gb`: storage only grows) "
        "applies at the next start of a STOPPED or ERROR environment. A RUNNING one answers 409 "
        "unless `restart: true` is given: then it is stopped and started again with it (202).",
    ),
)
@bp.durable_client_input(client_name="client")
async def api_update_environment(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    async def update() -> func.HttpResponse:
        caller = await blocking(lambda: principal_of(req, Limit.COMMAND))
        request = parse_body(req, UpdateEnvironmentRequest)
        environment_id = req.route_params["environment_id"]
        if not request.resizes:
            service = wiring.environments()
            return one_environment(
                await blocking(lambda: service.update(caller.subject, environment_id, request))
            )
        result: CommandResult = await blocking(
            lambda: wiring.resizing().resize(caller.subject, environment_id, request, caller.monthly_budget)
        )
        if not result.accepted:
            return one_environment(result.environment)
        return one_environment(await launch_or_unavailable(client, result.environment), 202)

    return await handle_async(update, req)


async def _command(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, command: Command
) -> func.HttpResponse:
    async def run() -> func.HttpResponse:
        caller = await blocking(lambda: principal_of(req, Limit.COMMAND))
        environment_id = req.route_params["environment_id"]
        result: CommandResult = await blocking(
            lambda: wiring.environments().command(
                caller.subject, environment_id, command, budget=caller.monthly_budget
            )
        )
        if not result.accepted:
            return one_environment(result.environment, 200)
        env = await launch_or_unavailable(client, result.environment)
        return one_environment(env, 202)

    return await handle_async(run, req)


@route(
    bp,
    Operation(
        "POST",
        ENVIRONMENT + "/start",
        "startEnvironment",
        "Start a stopped environment",
        TAG,
        {200: UNCHANGED, 202: ACCEPTED},
        refusals=(403, 409, 503),
        links=NEXT,
    ),
)
@bp.durable_client_input(client_name="client")
async def api_start_environment(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await _command(req, client, Command.START)


@route(
    bp,
    Operation(
        "POST",
        ENVIRONMENT + "/stop",
        "stopEnvironment",
        "Stop a running environment (the workspace is kept)",
        TAG,
        {200: UNCHANGED, 202: ACCEPTED},
        refusals=(409, 503),
        links=NEXT,
    ),
)
@bp.durable_client_input(client_name="client")
async def api_stop_environment(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await _command(req, client, Command.STOP)


@route(
    bp,
    Operation(
        "DELETE",
        ENVIRONMENT,
        "deleteEnvironment",
        "Delete an environment and its workspace",
        TAG,
        {202: ACCEPTED},
        refusals=(409, 503),
        links={"get": "getEnvironment"},
    ),
)
@bp.durable_client_input(client_name="client")
async def api_delete_environment(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    return await _command(req, client, Command.DELETE)


@route(
    bp,
    Operation(
        "GET",
        ENVIRONMENT + "/connection",
        "getConnection",
        "The IDE's URL and password (RUNNING only)",
        TAG,
        {
            200: Reply(
                "How to connect: the one answer holding the IDE password.",
                ConnectionView,
                example=openapi.connection_example,
            )
        },
        refusals=(409,),
    ),
)
def api_connection(req: func.HttpRequest) -> func.HttpResponse:
    def connection() -> func.HttpResponse:
        details = wiring.environments().connection(owner_of(req), req.route_params["environment_id"])
        return respond(200, connection_view(details))

    return handle(connection, req)


@route(
    bp,
    Operation(
        "GET",
        ENVIRONMENT + "/logs",
        "getLogs",
        "The container's recent log, secrets taken out",
        TAG,
        {200: Reply("The end of the log.", Logs, example=openapi.logs_example)},
        query=(
            Query("container", "Whose log.", {"type": "string", "enum": [s.value for s in LogSource]}, "ide"),
            Query(
                "tail",
                f"How many lines from the end (default {DEFAULT_TAIL}).",
                {"type": "integer", "minimum": 1, "maximum": MAX_TAIL},
                100,
            ),
        ),
        refusals=(409,),
    ),
)
def api_logs(req: func.HttpRequest) -> func.HttpResponse:
    """The container's recent log (?container=ide|tls, ?tail=1-1000), the environment's secrets
    taken out; owner only."""

    def logs() -> func.HttpResponse:
        # A command: on ACI an ARM call, throttled per subscription with every create and start
        # (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
        env = wiring.environments().get(owner_of(req, Limit.COMMAND), req.route_params["environment_id"])
        try:
            source = LogSource(req.params.get("container", LogSource.IDE.value))
        except ValueError:
            shown = [s.value for s in LogSource]
            raise ValidationFailed(
                f"container must be one of {shown}", [{"field": "container", "message": "unknown"}]
            ) from None
        tail = count_param(req, "tail", MAX_TAIL) or DEFAULT_TAIL
        text = wiring.compute().logs(compute_name(env.id), source, tail)
        secrets = list(wiring.environments().secure_environment(env).values())
        return respond(
            200, {"logs": scrub(tail_lines(text, tail), secrets), "container": source.value, "tail": tail}
        )

    return handle(logs, req)


@route(
    bp,
    Operation(
        "GET",
        ENVIRONMENT + "/events",
        "listEvents",
        "The environment's audit trail",
        TAG,
        {
            200: Reply(
                f"Newest first; without `limit` or `next`, the latest {paging.MAX_LIMIT} (and no `next`).",
                EventList,
                example=openapi.event_example,
            )
        },
        query=(
            page_size(", for older events."),
            NEXT_PAGE,
        ),
    ),
)
def api_events(req: func.HttpRequest) -> func.HttpResponse:
    def events() -> func.HttpResponse:
        owner, environment_id = owner_of(req), req.route_params["environment_id"]  # 401 before 400
        limit = count_param(req, "limit", paging.MAX_LIMIT)
        token = req.params.get("next")
        before = paging.events_before(token) if token else None
        size = limit or paging.MAX_LIMIT
        found = wiring.environments().events(owner, environment_id, size + 1, before)  # one more: a next?
        page = {"events": [event_view(event) for event in found[:size]]}
        if limit is None and token is None:  # the latest page, as it always was: no `next`
            return respond(200, page)
        following = paging.event_token(found[size - 1]) if len(found) > size else None
        return respond(200, {**page, "next": following})

    return handle(events, req)
