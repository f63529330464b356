"""HTTP plumbing shared by the API functions: JSON bodies, the error format, authentication."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from api import errors
from shared import wiring
from shared.errors import DomainError, ValidationFailed

log = logging.getLogger("dev8.api")
Model = TypeVar("Model", bound=BaseModel)
MAX_BODY_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        mimetype="application/json",
        headers={**_NO_STORE, **(headers or {})},
    )


def error_response(error: DomainError) -> func.HttpResponse:
    status, code = errors.status_of(error)
    return respond(status, errors.body(error.message, error.details, code), errors.HEADERS.get(type(error)))


def owner_of(req: func.HttpRequest) -> str:
    """The caller's identity: always the verified token's `sub`, never anything in the body."""
    return wiring.verifier().verify(req.headers.get("Authorization")).subject


def bearer_token(req: func.HttpRequest) -> str | None:
    """The raw bearer credential, for the one route that also takes an agent token."""
    scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def parse_body(req: func.HttpRequest, model: type[Model]) -> Model:
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationFailed(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise ValidationFailed("request body must be valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object")
    unknown = sorted(set(data) - set(model.model_fields))
    if unknown:
        raise ValidationFailed(
            f"unknown fields: {', '.join(unknown)}",
            [{"field": name, "message": "unknown field"} for name in unknown],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("request body is invalid", validation_details(exc)) from None


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    # Pydantic echoes the input; drop it, since a body may hold secrets.
    details = []
    for problem in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        details.append({"field": field, "message": problem["msg"].removeprefix("Value error, ")})
    return details


def _internal(exc: BaseException) -> func.HttpResponse:
    incident = uuid.uuid4().hex[:12]
    # Only the type: exception text can carry request data.
    log.error("unhandled %s (incident %s)", type(exc).__name__, incident)
    status, code = errors.INTERNAL
    return respond(status, errors.body("internal error", {"incident": incident}, code))


def handle(action: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    """Run a synchronous API action, turning errors into the documented error format."""
    try:
        return action()
    except DomainError as error:
        return error_response(error)
    except Exception as exc:
        return _internal(exc)


async def handle_async(action: Callable[[], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    try:
        return await action()
    except DomainError as error:
        return error_response(error)
    except Exception as exc:
        return _internal(exc)


T = TypeVar("T")


async def blocking(call: Callable[[], T]) -> T:
    """Table and token work is synchronous I/O: keep it off the worker's event loop."""
    return await asyncio.to_thread(call)
