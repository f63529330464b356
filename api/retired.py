"""Environments retention retired: listed while they can still be restored, and restored into a
new environment from their newest snapshot."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from api import openapi
from api.contract import Operation, Reply, route
from api.environments import CREATED, NEXT, TAG, created, launch_or_unavailable
from api.http import blocking, handle, handle_async, owner_of, respond
from api.views import RetiredList, retired_view
from shared import wiring
from shared.domain.rate_limits import Limit

bp = df.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


@route(
    bp,
    Operation(
        "GET",
        "v1/retired-environments",
        "listRetiredEnvironments",
        "Environments retention retired that can still be restored",
        TAG,
        {
            200: Reply(
                "Restorable until their `restorable_until`.", RetiredList, example=openapi.retired_example
            )
        },
    ),
)
def api_list_retired(req: func.HttpRequest) -> func.HttpResponse:
    """Environments retention retired that can still be restored from their snapshot."""

    def listing() -> func.HttpResponse:
        retired = wiring.snapshots().retired(owner_of(req))
        return respond(200, {"retired_environments": [retired_view(env) for env in retired]})

    return handle(listing, req)


@route(
    bp,
    Operation(
        "POST",
        "v1/retired-environments/{environment_id}/restore",
        "restoreRetiredEnvironment",
        "Bring a retired environment back from its snapshot",
        TAG,
        {201: CREATED},
        refusals=(403, 409, 503),
        links=NEXT,
    ),
)
@bp.durable_client_input(client_name="client")
async def api_restore_environment(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    async def restore() -> func.HttpResponse:
        owner = await blocking(lambda: owner_of(req, Limit.COMMAND))
        environment_id = req.route_params["environment_id"]
        result = await blocking(lambda: wiring.snapshots().restore_retired(owner, environment_id))
        env = await launch_or_unavailable(client, result.environment)
        return created(env)

    return await handle_async(restore, req)
