"""The API's own description: the OpenAPI document and a documentation page (Swagger UI, served
from this origin under a strict Content-Security-Policy). Anonymous, like the health checks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import azure.functions as func

from api import openapi
from api.contract import Auth, Operation, Reply, route
from api.http import SECURITY_HEADERS, handle, respond
from shared.errors import NotFound

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
TAG = "service"
PAGE = Path(__file__).with_name("docs_page")
# Scripts, styles and the document from this origin only; no inline script or style, no framing,
# no forms, no plugins. Swagger UI draws its icons as data: images.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "swagger-ui-bundle.js": ("vendor/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("vendor/swagger-ui.css", "text/css"),
    "dev8-docs.js": ("dev8-docs.js", "text/javascript"),
}


@route(
    bp,
    Operation(
        "GET",
        "v1/openapi.json",
        "openapi",
        "This document",
        TAG,
        {200: Reply("OpenAPI 3.1.", {"type": "object"})},
        auth=Auth.NONE,
    ),
)
def api_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return handle(lambda: respond(200, openapi.cached()), req)


@route(
    bp,
    Operation(
        "GET",
        "v1/docs",
        "docs",
        "The documentation page (Swagger UI)",
        TAG,
        {200: Reply("The page.", media_types=("text/html",))},
        auth=Auth.NONE,
    ),
)
def api_docs(req: func.HttpRequest) -> func.HttpResponse:
    return handle(lambda: _file("index.html", "text/html"), req)


@route(
    bp,
    Operation(
        "GET",
        "v1/docs/{asset}",
        "docsAsset",
        "A script or style sheet of the documentation page",
        TAG,
        {200: Reply("The file.", media_types=("text/javascript", "text/css"))},
        auth=Auth.NONE,
        parameters={"asset": {"type": "string", "enum": list(ASSETS)}},
    ),
)
def api_docs_asset(req: func.HttpRequest) -> func.HttpResponse:
    def asset() -> func.HttpResponse:
        found = ASSETS.get(req.route_params["asset"])
        if found is None:
            raise NotFound("no such file")
        return _file(*found)

    return handle(asset, req)


@lru_cache(maxsize=len(ASSETS) + 1)
def _read(relative: str) -> bytes:
    path = PAGE / relative
    if not path.is_file():  # scripts/docs-assets.sh was not run (make setup and azd run it)
        raise NotFound(f"{relative} is not installed; run scripts/docs-assets.sh")
    return path.read_bytes()


def _file(relative: str, media_type: str) -> func.HttpResponse:
    return func.HttpResponse(
        _read(relative),
        status_code=200,
        mimetype=media_type,
        charset="utf-8",
        headers={**SECURITY_HEADERS, "Content-Security-Policy": CSP},
    )
