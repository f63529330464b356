"""The OpenAPI 3.1 document, built from the route table (api/contract.py), the request models and
the response shapes (api/views.py). Nothing in it is written twice: paths and methods come from the
routes, schemas from pydantic, and the examples are made by the real views from sample records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from api import errors, views
from api.contract import ROUTES, Auth, Operation, Reply
from shared import templates
from shared.domain.catalog import SIZES
from shared.domain.environment import Actor, AuditEvent, CloudProvider, Environment, Policy, Status
from shared.domain.snapshots import Reason, Snapshot

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
TITLES = {
    400: "The request is malformed: a body, parameter or header the API does not take.",
    401: "No valid bearer token.",
    403: "The owner is at a quota (QUOTA_EXCEEDED) or this month's budget would be passed (BUDGET_EXCEEDED).",
    404: "No such environment for this caller (another owner's is 404 too).",
    409: "The lifecycle does not allow this now, or the request contradicts an earlier one.",
    411: "The body was sent chunked (Transfer-Encoding) instead of with a Content-Length.",
    413: "The body is larger than the API takes (64 KiB).",
    415: "The body is not JSON (Content-Type: application/json), or is compressed (Content-Encoding).",
    429: "Too many requests; Retry-After says when to try again.",
    500: "An internal error; `details.incident` names it in the logs.",
    503: "A service the request needs is unreachable; try again.",
}
ERROR_EXAMPLES: dict[int, tuple[str, Any, str]] = {
    400: ("request body is invalid", [{"field": "name", "message": "Field required"}], ""),
    401: ("a valid bearer token is required", None, ""),
    403: ("at most 5 environments per user", None, ""),
    404: ("environment not found", None, ""),
    409: ("environment is STOPPED; start it to connect", {"status": "STOPPED"}, "INVALID_STATE"),
    411: ("the request body must be sent with a Content-Length, not chunked", None, ""),
    413: ("request body is larger than 65536 bytes", None, ""),
    415: ("the request body must be JSON (Content-Type: application/json)", None, ""),
    429: ("too many requests; try again in 2 s", None, ""),
    500: ("internal error", {"incident": "5f0c2d9a1b3e"}, "INTERNAL"),
    503: ("the orchestration service is unavailable; try again", None, ""),
}
CODES = {status: code for status, code in errors.STATUS.values()} | {500: "INTERNAL"}
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id (the caller's, or one made for it): on every log line it causes.",
        "schema": {"type": "string"},
    },
    "Location": {"description": "The new environment's URL.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds until the next request may go.", "schema": {"type": "integer"}},
    "WWW-Authenticate": {"description": "How to authenticate (RFC 6750).", "schema": {"type": "string"}},
}
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "environment_id": {"type": "string", "pattern": r"^env-[0-9a-f]{16}$", "example": "env-3f2a9c1b7d4e5a60"},
    "snapshot_id": {"type": "string", "pattern": r"^[0-9a-f]{8}$", "example": "4bd1f0c2"},
}


def document(routes: dict[tuple[str, str], Operation] | None = None) -> dict[str, Any]:
    """The whole document for `routes` (the app's route table unless given)."""
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    responses = _errors(schemas)
    for operation in sorted((routes or ROUTES).values(), key=lambda op: (op.tag, op.path, op.method)):
        paths.setdefault("/" + operation.path, {})[operation.method.lower()] = _operation(operation, schemas)
    _template_names(schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dev8 API",
            "version": VERSION,
            "description": (
                "Cloud development environments: VS Code in a browser. Every route but the health "
                "checks, the catalog's document and this page takes a bearer token; the owner is always "
                "the token's `sub`, and another owner's environment is 404. Errors are "
                "`{error, details, code}`."
            ),
        },
        "servers": [{"url": "/api"}],
        "tags": [{"name": tag} for tag in sorted({op.tag for op in (routes or ROUTES).values()})],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": responses,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The user's token from the identity provider (its `sub` is the owner).",
                },
                "agent": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An environment's own agent token, handed only to its workspace.",
                },
            },
            "headers": HEADERS,
        },
    }


@lru_cache(maxsize=1)
def cached() -> dict[str, Any]:
    return document()


def _schema(kind: Any, schemas: dict[str, Any], mode: str = "serialization") -> dict[str, Any]:
    """A $ref to `kind`'s schema, adding it and everything it refers to into `schemas`."""
    generated = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    schemas.update(generated.pop("$defs", {}))
    name = generated.get("title") or kind.__name__
    schemas[name] = generated
    return {"$ref": REF.format(model=name)}


def _template_names(schemas: dict[str, Any]) -> None:
    """The create body's template fields take the deployed catalog's names and aliases."""
    catalog = templates.catalog()
    names = sorted([*catalog.names, *catalog.aliases])
    for field in ("template", "base_image"):
        prop = schemas.get("CreateEnvironmentRequest", {}).get("properties", {}).get(field)
        if prop is not None:
            prop["enum"] = [*names, None]


def _security(auth: Auth) -> list[dict[str, list[str]]]:
    schemes: dict[Auth, list[dict[str, list[str]]]] = {
        Auth.NONE: [],
        Auth.USER: [{"bearer": []}],
        Auth.AGENT: [{"agent": []}],
        Auth.USER_OR_AGENT: [{"bearer": []}, {"agent": []}],
    }
    return schemes[auth]


def _parameters(operation: Operation) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {**PATH_PARAMETERS, **operation.parameters}[name],
        }
        for name in operation.path_parameters
    ]
    for query in operation.query:
        parameter = {
            "name": query.name,
            "in": "query",
            "description": query.description,
            "schema": query.schema,
        }
        if query.example is not None:
            parameter["example"] = query.example
        found.append(parameter)
    if operation.idempotency_key:
        found.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "description": (
                    "Makes a retried create safe: the same key and body give the same environment "
                    "(1-128 printable characters)."
                ),
                "schema": {"type": "string", "minLength": 1, "maxLength": 128},
            }
        )
    found.append(
        {
            "name": "X-Request-ID",
            "in": "header",
            "description": "An id for this request, echoed back and carried by every log line it causes.",
            "schema": {"type": "string", "maxLength": 128},
        }
    )
    return found


def _reply(reply: Reply, schemas: dict[str, Any], links: dict[str, Any] | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": reply.description,
        "headers": {
            name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-ID", *reply.headers)
        },
    }
    if reply.body is not None:
        schema = reply.body if isinstance(reply.body, dict) else _schema(reply.body, schemas)
        content: dict[str, Any] = {"schema": schema}
        if reply.example is not None:
            content["example"] = reply.example() if callable(reply.example) else reply.example
        answer["content"] = {media_type: content for media_type in reply.media_types}
    elif reply.media_types != ("application/json",):
        answer["content"] = {media_type: {"schema": {"type": "string"}} for media_type in reply.media_types}
    if links:
        answer["links"] = links
    return answer


def _errors(schemas: dict[str, Any]) -> dict[str, Any]:
    """One shared answer per error status (operations refer to them)."""
    found = {}
    for status, title in TITLES.items():
        message, details, code = ERROR_EXAMPLES[status]
        headers = {401: ("WWW-Authenticate",), 429: ("Retry-After",)}.get(status, ())
        example = errors.body(message, details, code or CODES[status])
        found[f"Error{status}"] = _reply(
            Reply(title, views.ErrorBody, headers, example=example), schemas, None
        )
    return found


def _links(operation: Operation) -> dict[str, Any]:
    return {
        name: {
            "operationId": target,
            "parameters": {"environment_id": "$response.body#/environment/id"},
        }
        for name, target in operation.links.items()
    }


def _operation(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, reply in sorted(operation.replies.items()):
        links = _links(operation) if status < 300 and reply.body is views.EnvironmentBody else None
        answers[str(status)] = _reply(reply, schemas, links)
    for status in operation.error_statuses():
        answers[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    described: dict[str, Any] = {
        "operationId": operation.id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": _parameters(operation),
        "responses": answers,
        "security": _security(operation.auth),
    }
    if operation.description:
        described["description"] = operation.description
    if operation.body is not None:
        content: dict[str, Any] = {"schema": _schema(operation.body, schemas, mode="validation")}
        if operation.body_example is not None:
            content["example"] = operation.body_example
        described["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": content},
        }
    return described


# --- examples: the real views over sample records --------------------------------------------------

_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
_POLICY = Policy()


def sample_environment(status: Status = Status.RUNNING) -> Environment:
    running = status is Status.RUNNING
    return Environment(
        id="env-3f2a9c1b7d4e5a60",
        owner="user-123",
        name="my-app",
        status=status,
        template="node",
        size="small",
        cpu_cores=1,
        memory_gb=2,
        storage_gb=20,
        cloud_provider=CloudProvider.AZURE,
        cloud_region="westeurope",
        vs_code_url="https://dev8-3f2a9c1b7d4e5a60.westeurope.azurecontainer.io" if running else None,
        ports=[3000],
        environment_variables={"NODE_ENV": "development"},
        idle_timeout_minutes=30,
        last_accessed_at=_AT,
        created_at=_AT - timedelta(minutes=5),
        updated_at=_AT,
        started_at=_AT if running else None,
    )


def environment_example(status: Status = Status.RUNNING) -> dict[str, Any]:
    return {"environment": views.environment_view(sample_environment(status), _POLICY, _AT)}


def list_example() -> dict[str, Any]:
    return {"environments": [views.environment_view(sample_environment(), _POLICY, _AT)]}


def event_example() -> dict[str, Any]:
    event = AuditEvent(
        environment_id="env-3f2a9c1b7d4e5a60",
        from_status=Status.STARTING,
        to_status=Status.RUNNING,
        actor=Actor.SYSTEM,
        reason="ready",
        at=_AT,
    )
    return {"events": [views.event_view(event)]}


def connection_example() -> views.ConnectionView:
    env = sample_environment()
    return {
        "vs_code_url": env.vs_code_url,
        "password": "kq3V9xZp2LwE8tRb",
        "ssh_connection_string": f"ssh -p 2222 dev8@dev8-{env.id[4:]}.westeurope.azurecontainer.io",
    }


def logs_example() -> views.Logs:
    text = "[2026-12-01T09:29:58Z] info  HTTP server listening on http://0.0.0.0:8080/\n"
    return {
        "logs": text + "[2026-12-01T09:29:58Z] info    - Authentication is enabled\n",
        "container": "ide",
        "tail": 2,
    }


def retired_example() -> views.RetiredList:
    env = sample_environment(Status.STOPPED).model_copy(
        update={"status_reason": "retired after 30 days unused", "restorable_until": _AT + timedelta(days=7)}
    )
    return {"retired_environments": [views.retired_view(env)]}


def catalog_example() -> views.Catalog:
    return views.catalog_view(list(templates.catalog().templates), list(SIZES.values()))


def snapshot_example() -> views.SnapshotView:
    return views.snapshot_view(
        Snapshot(id="4bd1f0c2", taken_at=_AT, reason=Reason.STOP, files=412, bytes_added=18_204)
    )


def main() -> None:
    """Print the document (`make client` writes it into the TypeScript client)."""
    import json

    from api import docs, environments, me, metrics, retired, snapshots, system, usage  # noqa: F401  # every route registers itself

    print(json.dumps(document(), indent=2))
