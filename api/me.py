"""The caller's own data: everything the backend holds about them, to take away (GDPR's access
and portability; secrets, the IDE password and agent tokens are never part of it), and its
erasure (every environment deleted, then every row; anonymous usage totals stay)."""

from __future__ import annotations

from typing import Annotated

import azure.durable_functions as df
import azure.functions as func
from pydantic import Field, with_config
from typing_extensions import TypedDict

from api.contract import Operation, Reply, route
from api.http import blocking, handle, handle_async, owner_of, respond
from api.usage import UsageTotals, figures
from api.views import CLOSED, EnvironmentId, EventView, Moment, event_view, iso, one_of
from orchestrators.launch import forget
from shared import wiring
from shared.domain.rate_limits import Limit
from shared.errors import Unavailable
from shared.services.my_data import Held

bp = df.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


@with_config(CLOSED)
class HeldEnvironment(TypedDict):
    """One environment as the backend keeps it (deleted and retired ones too), its whole audit
    trail and its use month by month."""

    id: EnvironmentId
    name: str
    status: Annotated[str, Field(description="DELETED too: the record is kept for audit and billing.")]
    template: str
    size: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int
    cloud_region: str
    repository_url: str | None
    dotfiles_url: str | None
    environment_variables: dict[str, str]
    created_at: Moment | None
    updated_at: Moment | None
    restorable_until: Moment | None
    events: list[EventView]
    usage: dict[str, UsageTotals]


@with_config(CLOSED)
class Export(TypedDict):
    owner: Annotated[str, Field(description="Your token's subject: who the backend knows you as.")]
    exported_at: Moment | None
    environments: list[HeldEnvironment]


def held_view(held: Held) -> HeldEnvironment:
    env = held.environment
    return {
        "id": env.id,
        "name": env.name,
        "status": env.status.value,
        "template": env.template,
        "size": env.size,
        "cpu_cores": env.cpu_cores,
        "memory_gb": env.memory_gb,
        "storage_gb": env.storage_gb,
        "cloud_region": env.cloud_region,
        "repository_url": env.repository_url,
        "dotfiles_url": env.dotfiles_url,
        "environment_variables": dict(env.environment_variables),
        "created_at": iso(env.created_at),
        "updated_at": iso(env.updated_at),
        "restorable_until": iso(env.restorable_until),
        "events": [event_view(event) for event in held.events],
        "usage": {month: figures(used) for month, used in sorted(held.usage.items())},
    }


@route(
    bp,
    Operation(
        "GET",
        "v1/me/export",
        "exportMyData",
        "Everything the backend holds about you (never a secret)",
        "me",
        {
            200: Reply(
                "Your environments (deleted ones included), their audit trails and usage.",
                Export,
                example={"owner": "user-123", "exported_at": "2026-12-01T09:30:00Z", "environments": []},
            )
        },
    ),
)
def api_export(req: func.HttpRequest) -> func.HttpResponse:
    def export() -> func.HttpResponse:
        # A command's budget, not a read's: one export is a query per environment ever held.
        owner = owner_of(req, Limit.COMMAND)
        held = wiring.my_data().export(owner)
        body: Export = {
            "owner": owner,
            "exported_at": iso(wiring.utcnow()),
            "environments": [held_view(h) for h in held],
        }
        return respond(200, body)

    return handle(export, req)


@with_config(CLOSED)
class Erasing(TypedDict):
    status: Annotated[str, one_of(["deleting"], "Under way; poll GET /environments until it is empty.")]


@route(
    bp,
    Operation(
        "DELETE",
        "v1/me",
        "deleteMyData",
        "Delete everything the backend holds about you",
        "me",
        {
            202: Reply(
                "Under way: every environment is deleted (workspaces and snapshots with it), then "
                "every record, audit event and idempotency key about you; only anonymous usage "
                "totals stay. Asking again while it runs, or after, is the same answer.",
                Erasing,
                example={"status": "deleting"},
            )
        },
        refusals=(503,),
    ),
)
@bp.durable_client_input(client_name="client")
async def api_delete_my_data(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    async def erase() -> func.HttpResponse:
        owner = await blocking(lambda: owner_of(req, Limit.COMMAND))
        if not await forget(client, owner):
            raise Unavailable("could not start deleting your data; try again")
        body: Erasing = {"status": "deleting"}
        return respond(202, body)

    return await handle_async(erase, req)
