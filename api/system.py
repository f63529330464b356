"""Anonymous routes: health, liveness, readiness and the catalog."""

from __future__ import annotations

import logging

import azure.functions as func

from api.http import handle, respond
from api.views import catalog_view
from shared import wiring
from shared.domain.catalog import TEMPLATES
from shared.domain.placement import offered_sizes
from shared.settings import get_settings

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger("dev8.api")


@bp.route(route="v1/health", methods=["GET"])
def api_health(req: func.HttpRequest) -> func.HttpResponse:
    return handle(lambda: respond(200, {"status": "healthy"}), req)


@bp.route(route="v1/live", methods=["GET"])
def api_live(req: func.HttpRequest) -> func.HttpResponse:
    return handle(lambda: respond(200, {"status": "alive"}), req)


@bp.route(route="v1/ready", methods=["GET"])
def api_ready(req: func.HttpRequest) -> func.HttpResponse:
    return handle(_ready, req)


def _ready() -> func.HttpResponse:
    try:
        wiring.store().ping()
    except Exception as exc:
        log.warning("not ready: table storage unreachable (%s)", type(exc).__name__)
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


@bp.route(route="v1/templates", methods=["GET"])
def api_templates(req: func.HttpRequest) -> func.HttpResponse:
    def catalog() -> func.HttpResponse:
        wiring.verifier().verify(req.headers.get("Authorization"))
        # Only the sizes the configured compute backend can run (no xlarge on ACI).
        sizes = offered_sizes(wiring.placement(get_settings()))
        return respond(200, catalog_view(list(TEMPLATES.values()), sizes))

    return handle(catalog, req)
