"""The local host's own error answers, in the app's documented format and never echoing input.

aiohttp answers what it cannot read (a request line or header over its limits, a malformed
request) and bodies over `client_max_size` with plain text that may quote the offending part. The
Functions host in Azure answers these itself; locally they come back as
`{"error", "details", "code"}` with a fixed message per status, like every other error.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web, web_protocol, web_server

_ANSWERS = {
    400: ("the request could not be read", "BAD_REQUEST"),
    403: ("this origin may not call the API", "FORBIDDEN"),  # a CORS preflight refused
    404: ("no such route", "NOT_FOUND"),  # a path aiohttp's router cannot take (a %0A in it)
    413: ("the request body is too large", "PAYLOAD_TOO_LARGE"),
    414: ("the request line is too long", "URI_TOO_LONG"),
    431: ("the request headers are too large", "HEADERS_TOO_LARGE"),
}


def error_answer(status: int) -> web.Response:
    message, code = _ANSWERS.get(
        status, ("internal error", "INTERNAL") if status >= 500 else ("bad request", "BAD_REQUEST")
    )
    return web.Response(
        status=status,
        text=json.dumps({"error": message, "details": None, "code": code}),
        content_type="application/json",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """An aiohttp HTTP error raised while serving (a body over the limit) as a JSON answer."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_answer(exc.status)


class _RequestHandler(web_protocol.RequestHandler):
    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, "")  # logs it; refuses if a response began
        answer = error_answer(status)
        answer.force_close()
        return answer


class _Server(web_server.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _RequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """A web.AppRunner whose connections answer unreadable requests in JSON."""

    async def _make_server(self) -> web_server.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # same state; only the request handlers it makes differ
        return server
