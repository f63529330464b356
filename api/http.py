"""HTTP plumbing shared by the API functions: JSON bodies, the error format, authentication."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from api import errors
from api.route_labels import route_label
from shared import observability, wiring
from shared.auth import Principal
from shared.domain.environment import Environment
from shared.domain.rate_limits import Limit
from shared.errors import (
    DomainError,
    LengthRequired,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    shown,
)

log = logging.getLogger("dev8.api")
access = logging.getLogger("dev8.api.access")
Model = TypeVar("Model", bound=BaseModel)
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 16  # the deepest body the API takes is 3 levels (an object of maps of strings)
# An error names at most this many problems: a 60 KB body of 15,000 bad list items answered with
# a megabyte of details, one per item.
MAX_DETAILS = 20
# On every answer: nothing is cached (they are per user, and /connection holds a password), no
# content sniffing, no referrer leaves with a link, and browsers keep to HTTPS (the app is
# HTTPS-only: infra/modules/functionapp.bicep sets httpsOnly; a browser ignores HSTS over plain
# HTTP, so the local host is unaffected).
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}


def respond(status: int, body: Mapping[str, Any], headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        mimetype="application/json",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def error_response(error: DomainError) -> func.HttpResponse:
    status, code = errors.status_of(error)
    return respond(status, errors.body(error.message, error.details, code), errors.headers_of(error))


def owner_of(req: func.HttpRequest, limit: Limit = Limit.READ) -> str:
    """The caller's identity: always the verified token's `sub`, never anything in the body;
    the request counts against that owner's budget for `limit` (429 when it is spent, before
    anything is done). A request that fails authentication counts against its client address,
    and is answered 429 instead of 401 once that address has failed too often."""
    return principal_of(req, limit).subject


def principal_of(req: func.HttpRequest, limit: Limit = Limit.READ) -> Principal:
    """As owner_of, with what else the token says (a monthly budget of the caller's own)."""
    limiter = wiring.rate_limiter()
    try:
        principal = wiring.verifier().verify(req.headers.get("Authorization"))
    except Unauthorized:
        limiter.charge(Limit.AUTH_FAILURE, client_address(req))
        raise
    limiter.charge(limit, principal.subject)
    return principal


def agent_environment(req: func.HttpRequest, token: str, environment_id: str) -> Environment:
    """The environment whose own agent holds `token`, rate limited: a token that fails counts
    against the caller's address (429 once it has failed too often, as on user routes), a report
    against its environment's agent budget. A failure is known only after the record is read
    (the token's digest is on it), and an address over its failures is still read for:
    workspaces may share an outbound address, and another's forged tokens must not silence an
    environment's own agent."""
    limiter = wiring.rate_limiter()
    try:
        env = wiring.environments().agent_environment(token, environment_id)
    except Unauthorized:
        limiter.charge(Limit.AUTH_FAILURE, client_address(req))
        raise
    limiter.charge(Limit.AGENT, env.id)
    return env


async def principal_of_async(req: func.HttpRequest, limit: Limit = Limit.READ) -> Principal:
    """principal_of for a handler on the event loop: inline, unless the token's signing keys must
    be fetched first (then on a thread, so the loop never waits for the JWKS endpoint)."""
    if wiring.verifier().may_fetch(req.headers.get("Authorization")):
        return await blocking(lambda: principal_of(req, limit))
    return principal_of(req, limit)


def client_address(req: func.HttpRequest) -> str:
    """Who is calling, for the failed-authentication limit: the last X-Forwarded-For hop, the one
    the platform's front end appended (those before it are the client's own claims)."""
    forwarded = (req.headers.get("X-Forwarded-For") or "").split(",")[-1].strip()
    if forwarded.startswith("["):  # [IPv6]:port
        return forwarded[1:].split("]", 1)[0] or "unknown"
    host, _, port = forwarded.rpartition(":")
    if host and port.isdigit() and host.count(":") == 0:  # IPv4:port
        return host
    return forwarded[:64] or "unknown"


def bearer_token(req: func.HttpRequest) -> str | None:
    """The raw bearer credential, for the one route that also takes an agent token."""
    scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# ASCII digits, a few of them: str.isdigit() also takes "²" and "٣", and int() refuses the first
# and more than 4,300 digits (docs.python.org/3/library/stdtypes.html#int-max-str-digits).
_COUNT = re.compile(r"[0-9]{1,9}")


def count_param(req: func.HttpRequest, name: str, maximum: int) -> int | None:
    """A query parameter that must be a whole number from 1 to `maximum` (None when absent)."""
    raw = req.params.get(name)
    if raw is None:
        return None
    if not _COUNT.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise ValidationFailed(
            f"{name} must be a whole number from 1 to {maximum}",
            [{"field": name, "message": f"1-{maximum}"}],
        )
    return int(raw)


def parse_body(req: func.HttpRequest, model: type[Model], *, optional: bool = False) -> Model:
    """The request's JSON object as `model`: sent with a Content-Length (else 411), as
    `application/json` (else 415), at most MAX_BODY_BYTES (else 413), nested at most MAX_DEPTH
    deep, no duplicate keys, no unknown fields, and the model's own strict types (a "2" is not a
    number). `optional`: no body at all is the model's defaults."""
    raw = req.get_body() or b""
    # The Functions host passes a body on only when its Content-Length is above 0
    # (azure-functions-host, GrpcMessageConversionExtensions.ToRpcHttp): a chunked one arrives
    # empty, and is refused as what it is (rfc-editor.org/rfc/rfc9110#status.411), not as "no body".
    if not raw and req.headers.get("Transfer-Encoding"):
        raise LengthRequired("the request body must be sent with a Content-Length, not chunked")
    if optional and not raw:
        return model()
    media_type = (req.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if raw and media_type != "application/json":  # no body at all is a 400 below, whatever it says
        raise UnsupportedMediaType("the request body must be JSON (Content-Type: application/json)")
    # The Functions host hands a compressed body over as it came (azure-functions-host#3722): it
    # is refused as 415 names it (rfc-editor.org/rfc/rfc9110#status.415), not read as bad JSON.
    if raw and (req.headers.get("Content-Encoding") or "identity").strip().lower() != "identity":
        raise UnsupportedMediaType("the request body must not be compressed (no Content-Encoding)")
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES} bytes")
    if _depth(raw) > MAX_DEPTH:
        raise ValidationFailed(f"request body is nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(raw or b"null", object_pairs_hook=_no_duplicates)
    except _DuplicateKey as duplicate:
        raise ValidationFailed(
            f"duplicate key in the request body: {duplicate.key}",
            [{"field": duplicate.key, "message": "given more than once"}],
        ) from None
    except (ValueError, RecursionError):
        raise ValidationFailed("request body must be valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object")
    unknown = [_shown(name) for name in sorted(set(data) - set(model.model_fields))]
    if unknown:
        raise ValidationFailed(
            f"unknown fields: {', '.join(unknown[:MAX_DETAILS])}{_more(len(unknown))}",
            [{"field": name, "message": "unknown field"} for name in unknown[:MAX_DETAILS]],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            f"request body is invalid{_more(exc.error_count())}", validation_details(exc)
        ) from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = _shown(key)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when a key repeats (json.loads would keep the last silently)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


# A JSON string literal, escapes included; one left open runs to the end of the body. Open, it
# matches too: with the closing quote required, a body of `"\` repeated made every quote a failed
# match over the rest of the body (quadratic: 12 s of CPU for 64 KB, on the event loop), whereas
# this one succeeds at its first try wherever it starts, so the scan is linear.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _depth(raw: bytes) -> int:
    """How deep arrays and objects nest, counted before parsing (a parser recursing a thousand
    levels down fails in ways of its own); brackets inside strings do not count."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b'""', raw)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """The first MAX_DETAILS problems, each naming its field. Pydantic echoes the input; it is
    dropped, since a body may hold secrets."""
    details = []
    for problem in exc.errors(include_input=False, include_url=False)[:MAX_DETAILS]:
        field = _shown(".".join(str(part) for part in problem["loc"]) or "body")
        details.append({"field": field, "message": problem["msg"].removeprefix("Value error, ")})
    return details


def _shown(name: str) -> str:
    """A field name from the body as an error shows it: at most 100 characters."""
    return shown(name, 100)


def _more(problems: int) -> str:
    return f" ({MAX_DETAILS} of {problems} problems shown)" if problems > MAX_DETAILS else ""


def _internal(exc: BaseException) -> func.HttpResponse:
    incident = uuid.uuid4().hex[:12]
    # Only the type: exception text can carry request data.
    log.error("unhandled %s (incident %s)", type(exc).__name__, incident)
    status, code = errors.INTERNAL
    return respond(status, errors.body("internal error", {"incident": incident}, code))


def handle(action: Callable[[], func.HttpResponse], req: func.HttpRequest) -> func.HttpResponse:
    """Run a synchronous API action for `req`: its request id bound for every log line, errors in
    the documented format, the id echoed, one access log line and the latency metric."""
    with _serving(req) as done:
        try:
            return done(action())
        except DomainError as error:
            return done(error_response(error))
        except Exception as exc:
            return done(_internal(exc))


async def handle_async(
    action: Callable[[], Awaitable[func.HttpResponse]], req: func.HttpRequest
) -> func.HttpResponse:
    with _serving(req) as done:
        try:
            return done(await action())
        except DomainError as error:
            return done(error_response(error))
        except Exception as exc:
            return done(_internal(exc))


@contextmanager
def _serving(req: func.HttpRequest) -> Iterator[Callable[[func.HttpResponse], func.HttpResponse]]:
    request_id = observability.new_request_id(req.headers.get("X-Request-ID"))
    environment_id = (req.route_params or {}).get("environment_id")
    began = time.perf_counter()
    with observability.bound(request_id=request_id, environment_id=environment_id):

        def done(response: func.HttpResponse) -> func.HttpResponse:
            if req.method == "HEAD":  # a GET route's answer without its body (api/contract.py)
                response = func.HttpResponse(
                    status_code=response.status_code,
                    headers=dict(response.headers),
                    mimetype=response.mimetype,
                    charset=response.charset,
                )
            response.headers["X-Request-ID"] = request_id
            seconds = time.perf_counter() - began
            route = route_label(req.method, req.url)
            access.info(
                "%s %s %d",
                req.method,
                route,
                response.status_code,
                extra={
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            observability.record_api(route, req.method, response.status_code, seconds)
            return response

        yield done


T = TypeVar("T")


async def blocking(call: Callable[[], T]) -> T:
    """Table and token work is synchronous I/O: keep it off the worker's event loop."""
    return await asyncio.to_thread(call)
