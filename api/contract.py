"""The API's route table: every HTTP route is registered here, with what it takes and answers.

`route(bp, Operation(...))` stands where `bp.route(...)` would: it registers the function with the
Functions blueprint and keeps the operation, so the OpenAPI document (api/openapi.py) is built from
the same table the app serves. tests/api/test_openapi.py fails when the app has a route the table
lacks or the reverse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

ROUTES: dict[tuple[str, str], Operation] = {}


class Auth(StrEnum):
    NONE = "none"
    USER = "user"  # the user's bearer token; rate limited per owner
    AGENT = "agent"  # the environment's own agent token only
    USER_OR_AGENT = "user_or_agent"


@dataclass(frozen=True)
class Reply:
    description: str
    body: Any = None  # a TypedDict of api/views.py, or a JSON schema (a dict); None: no JSON body
    headers: tuple[str, ...] = ()  # documented response headers beyond X-Request-ID
    media_types: tuple[str, ...] = ("application/json",)
    example: Any = None  # a value, or a function that makes one when the document is built


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    schema: dict[str, Any]
    example: Any = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under the host's route prefix, as the Functions host takes it
    id: str  # operationId: what generated clients call it
    summary: str
    tag: str
    replies: dict[int, Reply]
    auth: Auth = Auth.USER
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_example: dict[str, Any] | None = None
    query: tuple[Query, ...] = ()
    idempotency_key: bool = False
    refusals: tuple[int, ...] = ()  # error statuses beyond those that follow from the rest
    links: dict[str, str] = field(default_factory=dict)  # link name -> operationId on the same id
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)  # path parameters' own schemas
    description: str = ""

    @property
    def path_parameters(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    def error_statuses(self) -> list[int]:
        """Every error status the route can answer: those its inputs and credentials imply, and
        its own refusals. A status the app can send must be here (schemathesis checks it)."""
        found = {500, *self.refusals}
        if self.auth is not Auth.NONE:
            found |= {401, 503}  # 503: the token signing keys could not be fetched
        if self.auth is not Auth.NONE:
            found.add(429)  # an agent's reports count against its owner's budget too
        if self.body is not None:
            found |= {400, 411, 413, 415}
        if self.query or self.idempotency_key:
            found.add(400)
        if self.path_parameters:
            found.add(404)
        return sorted(found - set(self.replies))


def route(blueprint: Any, operation: Operation) -> Callable[[Any], Any]:
    """Register `operation` and its function (the decorator `blueprint.route` would give)."""
    key = (operation.method, operation.path)
    if key in ROUTES or any(op.id == operation.id for op in ROUTES.values()):
        raise ValueError(f"route {operation.method} {operation.path} ({operation.id}) is registered twice")
    ROUTES[key] = operation
    return blueprint.route(route=operation.path, methods=served_methods(operation))  # type: ignore[no-any-return]


def served_methods(operation: Operation) -> list[str]:
    """A GET route answers HEAD too (RFC 9110 9.3.2: the GET's status and headers, no body; api/http.py
    drops the body). Load balancers probe with it: Azure Front Door's health probes use HEAD by
    default on new profiles and count anything but 200 as down, so a 405 from /health would take
    the origin out (https://learn.microsoft.com/azure/frontdoor/health-probes). The document lists
    the GET."""
    return [operation.method, "HEAD"] if operation.method == "GET" else [operation.method]
