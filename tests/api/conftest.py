"""The real function app served by the local host on a free port, over Azurite and the
simulated compute backend; tests talk to it over HTTP."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devhost.dev8 import local_host
from devhost.host.server import LocalHost, serve_in_thread
from shared import observability, wiring
from shared.auth import mint_token
from tests.conftest import JWT_SECRET

TRANSITIONAL = {"CREATING", "STARTING", "STOPPING", "DELETING"}


def token(sub: str, issuer: str = "dev8-tests", audience: str = "dev8-api") -> str:
    return mint_token(JWT_SECRET, sub, issuer=issuer, audience=audience)


@dataclass
class Api:
    http: httpx.Client
    host: LocalHost

    def as_user(self, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(sub)}"}

    def call(self, method: str, path: str, user: str | None = "alice", **kwargs: Any) -> httpx.Response:
        headers = {**(self.as_user(user) if user else {}), **kwargs.pop("headers", {})}
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def create(self, user: str = "alice", **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/environments", user, json={"name": "dev", "template": "node", **body})
        assert response.status_code == 201, response.text
        return response.json()["environment"]

    def settled(self, env_id: str, user: str = "alice", timeout: float = 30) -> dict[str, Any]:
        """Poll until the environment leaves its transitional status (or is gone: None)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.call("GET", f"/environments/{env_id}", user)
            if response.status_code == 404:
                return {"status": None}
            env = response.json()["environment"]
            if env["status"] not in TRANSITIONAL or time.monotonic() > deadline:
                return env
            time.sleep(0.05)


@pytest.fixture
def api(app_env: pytest.MonkeyPatch) -> Iterator[Api]:
    app_env.setenv("DEV8_SIMULATED_BOOT_POLLS", "0")
    wiring.reset()
    import function_app

    host = local_host(function_app.create_app(), port=0)
    with serve_in_thread(host), httpx.Client(base_url=host.url, timeout=60) as client:
        yield Api(client, host)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The app's log lines (JSON, one per line) while the test runs."""
    logger = logging.getLogger(observability.LOGGER)
    before = (logger.level, logger.propagate)
    stream = io.StringIO()
    handler = observability.configure_json_logs(stream)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
