"""Serve a FunctionApp's HTTP triggers over aiohttp, the way the Functions host would.

Routes and methods come from the app's own registered functions (there is no second route
table), under the route prefix of host.json.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.decorators.function_app import Function
from azure.functions.decorators.http import HttpMethod, HttpTrigger

from devhost.host.invoke import durable_client_parameter, invoke

log = logging.getLogger("devhost.http")
_PARAMETER = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(?P<optional>\?)?\}")


@dataclass(frozen=True)
class HttpFunction:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    call: Callable[..., Any]
    request_parameter: str
    client_parameter: str | None


def route_prefix(host_json: Path) -> str:
    config = json.loads(host_json.read_text())
    prefix = config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return str(prefix).strip("/")


def _compile(prefix: str, route: str) -> re.Pattern[str]:
    pattern = ""
    position = 0
    template = "/".join(part for part in (prefix, route.strip("/")) if part)
    for match in _PARAMETER.finditer(template):
        pattern += re.escape(template[position : match.start()])
        name = match.group("name")
        pattern += f"(?P<{name}>[^/]+)" + ("?" if match.group("optional") else "")
        position = match.end()
    pattern += re.escape(template[position:])
    # Literal segments match whatever their case, as in ASP.NET Core's routing, which the
    # Functions host uses (learn.microsoft.com/aspnet/core/fundamentals/routing#route-templates).
    return re.compile(f"^/{pattern}/?$", re.IGNORECASE)


def http_functions(functions: Iterable[Function], prefix: str) -> list[HttpFunction]:
    found = []
    for function in functions:
        trigger = function.get_trigger()
        if not isinstance(trigger, HttpTrigger):
            continue
        name = function.get_function_name() or trigger.name
        client = durable_client_parameter(function)
        # No methods declared means any method, as on the Functions host.
        declared = trigger.methods or list(HttpMethod)
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in declared)
        found.append(
            HttpFunction(
                name=name,
                pattern=_compile(prefix, trigger.route or name),
                methods=methods,
                call=function.get_user_function(),
                request_parameter=trigger.name,
                client_parameter=client,
            )
        )
    return found


class HttpDispatcher:
    """Matches a request to a function, builds the func.HttpRequest and renders the response."""

    def __init__(self, functions: list[HttpFunction], client_binding: Callable[[], str]):
        self._functions = functions
        self._client_binding = client_binding

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        for function in self._functions:
            match = function.pattern.fullmatch(request.path)
            # A method the route does not take is no route at all: the Functions host answers it
            # 404, not 405 (azure-functions-host#10098), and so does this one.
            if not match or request.method not in function.methods:
                continue
            route_params = {k: v for k, v in match.groupdict().items() if v is not None}
            return await self._invoke(function, request, route_params)
        return web.json_response({"error": "no such route", "details": None, "code": "NOT_FOUND"}, status=404)

    async def _invoke(
        self, function: HttpFunction, request: web.Request, route_params: dict[str, str]
    ) -> web.StreamResponse:
        # Only a body of declared length is passed on (ToRpcHttp: ContentLength > 0); a chunked
        # one arrives empty, as it does in Azure.
        body = await request.read() if request.content_length else b""
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=_headers(request),
            params=_query(request),
            route_params=route_params,
            body=body,
        )
        arguments: dict[str, Any] = {function.request_parameter: http_request}
        try:
            result = await invoke(function.call, arguments, function.client_parameter, self._client_binding)
        except Exception as exc:  # the host answers 500 when a function raises
            log.error("function %s raised %s", function.name, type(exc).__name__)
            return web.json_response(
                {"error": "internal error", "details": None, "code": "INTERNAL"}, status=500
            )
        return _render(result)


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Pairs as ASP.NET Core's request collections hold them: names compared without case (the
    first spelling kept), the values of a repeated name in one entry joined with "," (as
    StringValues.ToString joins them); the Functions host hands the worker these strings."""
    joined: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower(), name)
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _query(request: web.Request) -> dict[str, str]:
    """The query as the worker receives it (azure-functions-host, GrpcMessageConversionExtensions
    .ToRpcHttp): `?limit=5&limit=7` arrives as "5,7", and a parameter whose value is empty is not
    passed on at all (the Python worker does not declare UseNullableValueDictionaryForHttp)."""
    return {name: value for name, value in _joined(request.query.items()).items() if value}


def _headers(request: web.Request) -> dict[str, str]:
    """The headers as the worker receives them (ToRpcHttp, as for the query): names in lower case, a
    header sent twice in one entry, its values joined with ","; and X-Forwarded-For ends with the
    caller's address, as the front end in Azure appends it."""
    joined = {name.lower(): value for name, value in _joined(request.headers.items()).items()}
    if request.remote:
        forwarded = joined.get("x-forwarded-for")
        joined["x-forwarded-for"] = f"{forwarded},{request.remote}" if forwarded else request.remote
    return joined


def _render(result: Any) -> web.StreamResponse:
    if not isinstance(result, func.HttpResponse):
        return web.Response(status=204)
    headers = {k: v for k, v in result.headers.items() if k.lower() != "content-type"}
    return web.Response(
        status=result.status_code,
        body=result.get_body(),
        headers=headers,
        content_type=result.mimetype or "application/octet-stream",
        charset=result.charset
        if result.mimetype and result.mimetype.startswith(("text/", "application/json"))
        else None,
    )
