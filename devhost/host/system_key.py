"""The system key in front of the Durable webhooks: `?code=<key>` or 401, as the Functions host
answers an unkeyed call to /runtime/webhooks/durabletask (learn.microsoft.com/azure/azure-functions/
durable/durable-functions-http-api, "Base URL": every request carries the system key)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def keyed(handler: Handler, key: str) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        given = request.query.get("code", "")
        if not hmac.compare_digest(given.encode(), key.encode()):
            return web.Response(status=401)
        return await handler(request)

    return guarded


class KeyedRoutes(web.RouteTableDef):
    """A route table whose every handler checks the key first (none: open, for tests of the API)."""

    def __init__(self, key: str | None) -> None:
        super().__init__()
        self._key = key

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        register = super().route(method, path, **kwargs)
        key = self._key
        return lambda handler: register(keyed(handler, key) if key is not None else handler)
