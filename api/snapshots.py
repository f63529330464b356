"""Workspace snapshot routes: list, take, restore; and the workspace agent's reports."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ConfigDict

from api import openapi
from api.contract import Auth, Operation, Reply, route
from api.environments import CREATED, ENVIRONMENT, created, launch_or_unavailable
from api.http import (
    agent_environment,
    bearer_token,
    blocking,
    handle,
    handle_async,
    owner_of,
    parse_body,
    respond,
)
from api.views import (
    ReportAnswer,
    RestoreBody,
    SnapshotList,
    SnapshotRequestBody,
    snapshot_view,
)
from shared import wiring
from shared.domain.rate_limits import Limit
from shared.domain.snapshots import SnapshotReport
from shared.errors import Unauthorized

bp = df.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)

SNAPSHOTS = ENVIRONMENT + "/snapshots"
TAG = "snapshots"


class RestoreRequest(BaseModel):
    """Where to restore: in place at the next start (the default), or into a new environment."""

    model_config = ConfigDict(extra="forbid", strict=True)

    new_environment: bool = False


@route(
    bp,
    Operation(
        "GET",
        SNAPSHOTS,
        "listSnapshots",
        "The workspace's snapshots, newest first",
        TAG,
        {
            200: Reply(
                "Newest first.", SnapshotList, example=lambda: {"snapshots": [openapi.snapshot_example()]}
            )
        },
    ),
)
def api_list_snapshots(req: func.HttpRequest) -> func.HttpResponse:
    def listing() -> func.HttpResponse:
        found = wiring.snapshots().list(owner_of(req), req.route_params["environment_id"])
        return respond(200, {"snapshots": [snapshot_view(snap) for snap in found]})

    return handle(listing, req)


@route(
    bp,
    Operation(
        "POST",
        SNAPSHOTS,
        "takeSnapshot",
        "Ask a RUNNING workspace for a snapshot now",
        TAG,
        {
            202: Reply(
                "Asked: listed once the workspace took it. The audit trail says what came of it: "
                "taken, nothing changed since the last one, or failed.",
                SnapshotRequestBody,
                example={"snapshot_request": {"id": "c0ffee01", "environment_id": "env-3f2a9c1b7d4e5a60"}},
            )
        },
        refusals=(409,),
    ),
)
def api_take_snapshot(req: func.HttpRequest) -> func.HttpResponse:
    """A manual snapshot of a RUNNING environment: asked now, listed once the workspace took it."""

    def take() -> func.HttpResponse:
        environment_id = req.route_params["environment_id"]
        request_id = wiring.snapshots().take(owner_of(req, Limit.COMMAND), environment_id)
        return respond(202, {"snapshot_request": {"id": request_id, "environment_id": environment_id}})

    return handle(take, req)


@route(
    bp,
    Operation(
        "POST",
        SNAPSHOTS + "/{snapshot_id}/restore",
        "restoreSnapshot",
        "Restore a snapshot: at the next start, or into a new environment",
        TAG,
        {
            200: Reply(
                "The stopped environment restores it at its next start.",
                RestoreBody,
                example=lambda: {
                    "restore": {
                        "environment_id": "env-3f2a9c1b7d4e5a60",
                        "snapshot": openapi.snapshot_example(),
                        "on": "next start",
                    }
                },
            ),
            201: CREATED,
        },
        body=RestoreRequest,
        body_required=False,
        body_example={"new_environment": True},
        refusals=(403, 409, 503),
    ),
)
@bp.durable_client_input(client_name="client")
async def api_restore_snapshot(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """On a stopped environment the next start restores the snapshot; with
    `{"new_environment": true}` a new environment is made from it (201)."""

    async def restore() -> func.HttpResponse:
        owner = await blocking(lambda: owner_of(req, Limit.COMMAND))
        environment_id, snapshot_id = req.route_params["environment_id"], req.route_params["snapshot_id"]
        body = parse_body(req, RestoreRequest, optional=True)
        service = wiring.snapshots()
        if body.new_environment:
            result = await blocking(lambda: service.restore_into_new(owner, environment_id, snapshot_id))
            env = await launch_or_unavailable(client, result.environment)
            return created(env)
        snap = await blocking(lambda: service.restore_on_start(owner, environment_id, snapshot_id))
        return respond(
            200,
            {
                "restore": {
                    "environment_id": environment_id,
                    "snapshot": snapshot_view(snap),
                    "on": "next start",
                }
            },
        )

    return await handle_async(restore, req)


@route(
    bp,
    Operation(
        "POST",
        SNAPSHOTS + "/report",
        "reportSnapshots",
        "The workspace's snapshot agent reports (its agent token only)",
        TAG,
        {200: Reply("Recorded.", ReportAnswer, example={"listed": 3})},
        auth=Auth.AGENT,
        body=SnapshotReport,
        refusals=(409,),
    ),
)
def api_snapshot_report(req: func.HttpRequest) -> func.HttpResponse:
    """The workspace's snapshot agent, with its environment's agent token only."""

    def report() -> func.HttpResponse:
        token = bearer_token(req)
        if token is None:
            raise Unauthorized("an agent token is required")
        # Authenticated before the body is looked at: a stranger learns nothing from a 400.
        env = agent_environment(req, token, req.route_params["environment_id"])
        listed = wiring.snapshots().report(env, parse_body(req, SnapshotReport))
        return respond(200, {"listed": listed})

    return handle(report, req)
