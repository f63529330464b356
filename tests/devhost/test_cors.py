"""CORS on the local host, as `func start` applies local.settings.json's Host.CORS and
Host.CORSCredentials (issue 12, item 11)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devhost.__main__ import host_settings
from devhost.dev8 import local_host
from devhost.host.cors import Cors
from devhost.host.server import serve_in_thread
from shared import wiring
from tests.api.conftest import token
from tests.infra.tooling import ROOT

FRONTEND = "http://localhost:3000"


@pytest.fixture
def http(app_env: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    wiring.reset()
    import function_app

    cors = Cors.from_host_settings(host_settings(ROOT / "local.settings.sample.json"))
    host = local_host(function_app.create_app(), port=0, cors=cors)
    with serve_in_thread(host), httpx.Client(base_url=host.url, timeout=30) as client:
        yield client


def preflight(http: httpx.Client, origin: str, method: str = "POST") -> httpx.Response:
    return http.options(
        "/api/v1/environments",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_the_sample_settings_allow_the_frontend_with_credentials(http: httpx.Client) -> None:
    answer = preflight(http, FRONTEND)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == FRONTEND
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["access-control-allow-methods"] == "POST"
    assert answer.headers["access-control-allow-headers"] == "authorization, content-type"
    listed = http.get(
        "/api/v1/environments", headers={"Origin": FRONTEND, "Authorization": f"Bearer {token('a')}"}
    )
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == FRONTEND


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://localhost:3001", "null", FRONTEND + ".evil.example"]
)
def test_other_origins_are_refused(http: httpx.Client, origin: str) -> None:
    answer = preflight(http, origin)
    assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    listed = http.get(
        "/api/v1/environments", headers={"Origin": origin, "Authorization": f"Bearer {token('a')}"}
    )
    assert "access-control-allow-origin" not in listed.headers  # the browser keeps the answer from it


def test_a_wildcard_never_goes_with_credentials() -> None:
    assert Cors(["*"]).allows("https://anyone.example")
    assert not Cors(["*"], credentials=True).allows("https://anyone.example")
    assert not Cors([]).allows(FRONTEND) and not Cors([FRONTEND]).allows(None)
