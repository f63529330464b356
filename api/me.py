"""The caller's own data: everything the backend holds about them, to take away (GDPR's access
and portability). Secrets, the IDE password and agent tokens are never part of it."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import Field, with_config
from typing_extensions import TypedDict

from api.contract import Operation, Reply, route
from api.http import handle, owner_of, respond
from api.usage import UsageTotals, figures
from api.views import CLOSED, EnvironmentId, EventView, Moment, event_view, iso
from shared import wiring
from shared.services.my_data import Held

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


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
        owner = owner_of(req)
        held = wiring.my_data().export(owner)
        body: Export = {
            "owner": owner,
            "exported_at": iso(wiring.utcnow()),
            "environments": [held_view(h) for h in held],
        }
        return respond(200, body)

    return handle(export, req)
