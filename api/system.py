"""Anonymous routes: health, liveness, readiness and the catalog."""

from __future__ import annotations

import azure.functions as func

from api import openapi
from api.contract import Auth, Operation, Reply, route
from api.http import handle, owner_of, respond
from api.views import Catalog, StatusBody, Unready, catalog_view
from shared import templates, wiring
from shared.domain.placement import offered_sizes
from shared.settings import get_settings

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)


TAG = "service"


def _probe(path: str, operation_id: str, summary: str, status: str) -> Operation:
    return Operation(
        "GET",
        path,
        operation_id,
        summary,
        TAG,
        {200: Reply("Answering.", StatusBody, example={"status": status})},
        auth=Auth.NONE,
    )


@route(bp, _probe("v1/health", "health", "Is the app answering", "healthy"))
def api_health(req: func.HttpRequest) -> func.HttpResponse:
    return handle(lambda: respond(200, {"status": "healthy"}), req)


@route(bp, _probe("v1/live", "live", "Liveness: the process answers", "alive"))
def api_live(req: func.HttpRequest) -> func.HttpResponse:
    return handle(lambda: respond(200, {"status": "alive"}), req)


@route(
    bp,
    Operation(
        "GET",
        "v1/ready",
        "ready",
        "Readiness: table storage is reachable",
        TAG,
        {
            200: Reply("Ready.", StatusBody, example={"status": "ready"}),
            503: Reply(
                "Table storage is unreachable.",
                Unready,
                example={
                    "status": "unavailable",
                    "code": "UNAVAILABLE",
                    "error": "table storage is unreachable",
                    "details": None,
                },
            ),
        },
        auth=Auth.NONE,
    ),
)
def api_ready(req: func.HttpRequest) -> func.HttpResponse:
    return handle(_ready, req)


def _ready() -> func.HttpResponse:
    failure = wiring.readiness().failure()  # checked at most every few seconds: anyone may ask
    if failure is not None:
        return respond(
            503,
            {
                "status": "unavailable",
                "code": "UNAVAILABLE",
                "error": "table storage is unreachable",
                "details": None,
            },
        )
    return respond(200, {"status": "ready"})


@route(
    bp,
    Operation(
        "GET",
        "v1/templates",
        "listTemplates",
        "The templates and the sizes this deployment offers",
        TAG,
        {200: Reply("The catalog.", Catalog, example=openapi.catalog_example)},
    ),
)
def api_templates(req: func.HttpRequest) -> func.HttpResponse:
    def catalog() -> func.HttpResponse:
        owner_of(req)
        # Only the sizes the configured compute backend can run (no xlarge on ACI).
        sizes = offered_sizes(wiring.placement(get_settings()))
        return respond(200, catalog_view(list(templates.catalog().templates), sizes))

    return handle(catalog, req)
