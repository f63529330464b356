"""CORS as `func start` applies the local settings' Host.CORS and Host.CORSCredentials: a browser
on an allowed origin may call the API (credentials too, when allowed); any other origin gets no
CORS headers, so the browser keeps the answer from it, and its preflight is refused."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from devhost.host.transport import error_answer

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP token (a header or method name)
MAX_AGE_SECONDS = 600


class Cors:
    def __init__(self, origins: Iterable[str], credentials: bool = False) -> None:
        self.origins = frozenset(origin.strip().rstrip("/") for origin in origins if origin.strip())
        self.credentials = credentials

    @classmethod
    def from_host_settings(cls, host: dict[str, Any]) -> Cors:
        """From local.settings.json's "Host": {"CORS": "a,b", "CORSCredentials": true}."""
        return cls(str(host.get("CORS") or "").split(","), bool(host.get("CORSCredentials", False)))

    def allows(self, origin: str | None) -> bool:
        if not origin:
            return False
        # "*" opens every origin, but never together with credentials (the Fetch standard).
        return origin in self.origins or ("*" in self.origins and not self.credentials)

    def headers_for(self, origin: str) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        wanted = request.headers.get("Access-Control-Request-Method")
        if request.method == "OPTIONS" and origin and wanted:
            return self._preflight(origin, wanted, request.headers.get("Access-Control-Request-Headers", ""))
        response: web.StreamResponse = await handler(request)
        if self.allows(origin):
            assert origin is not None
            response.headers.update(self.headers_for(origin))
        elif origin:
            response.headers["Vary"] = "Origin"
        return response

    def _preflight(self, origin: str, method: str, requested: str) -> web.StreamResponse:
        names = [name.strip() for name in requested.split(",") if name.strip()]
        tokens = all(_TOKEN.fullmatch(token) for token in (method, *names))
        if not self.allows(origin) or not tokens:
            refused = error_answer(403)
            refused.headers["Vary"] = "Origin"
            return refused
        headers = {
            **self.headers_for(origin),
            "Access-Control-Allow-Methods": method,
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        }
        if names:
            headers["Access-Control-Allow-Headers"] = ", ".join(names)
        return web.Response(status=204, headers=headers)
