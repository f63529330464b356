"""The access log's and the latency metric's route is the registered template, whatever the
caller's spelling of the path: no caller can make a series of their own."""

from __future__ import annotations

import io
import json

import pytest

from api.contract import ROUTES
from api.route_labels import PREFIX, UNMATCHED, route_label
from tests.api.conftest import Api, parsed
from tests.infra.tooling import ROOT

ENV = "env-3f2a9c1b7d4e5a60"
BASE = "https://dev8.example"


@pytest.fixture(autouse=True)
def routes_registered(app_env: pytest.MonkeyPatch) -> None:
    import function_app  # noqa: F401 (registers every route)


def test_the_prefix_is_host_json_s() -> None:
    config = json.loads((ROOT / "host.json").read_text())
    assert "/" + config["extensions"]["http"]["routePrefix"] == PREFIX


def test_every_route_is_its_own_series() -> None:
    labels = set()
    for method, path in ROUTES:
        filled = (
            path.replace("{environment_id}", ENV)
            .replace("{snapshot_id}", "0badf00d")
            .replace("{asset}", "x.js")
        )
        label = route_label(method, f"{BASE}{PREFIX}/{filled}?limit=2")
        assert label == PREFIX + "/" + path.replace("{environment_id}", "{id}"), (method, path)
        labels.add((method, label))
    assert len(labels) == len(ROUTES)
    assert route_label("HEAD", f"{BASE}/api/v1/health") == "/api/v1/health"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/environments/{ENV}",
        f"/api/v1/environments/{ENV}/",
        f"/API/V1/Environments/{ENV.upper()}",
        f"/api/v1/%65nvironments/{ENV}",
        "/api/v1/environments/anything-goes-here",
        "/api/v1/environments/%F0%9F%92%A5",
    ],
)
def test_a_caller_s_spelling_is_the_route_s_label(path: str) -> None:
    assert route_label("GET", BASE + path) == "/api/v1/environments/{id}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/elsewhere"),
        ("GET", "/api/v1/nothing"),
        ("PUT", "/api/v1/environments"),
        ("GET", "/api/v1/environments//x/y"),
    ],
)
def test_what_no_route_serves_is_one_label(method: str, path: str) -> None:
    assert route_label(method, BASE + path) == UNMATCHED


def test_odd_spellings_through_the_host_log_only_registered_routes(api: Api, log_lines: io.StringIO) -> None:
    env = api.create()["id"]
    spellings = [
        "/api/v1/environments/",
        "/api/v1/%65nvironments",
        f"/api/v1/environments/{env}/",
        f"/api/v1/environments/{env.upper()}",
        "/api/v1/environments/anything-goes-here",
        "/api/v1/environments/xyz/events",
    ]
    for path in spellings:
        api.http.get(path, headers=api.as_user("alice"))
        api.http.get(path)  # unauthenticated: answered 401, logged as well
    routes = {line["route"] for line in parsed(log_lines) if line["logger"] == "dev8.api.access"}
    assert routes == {
        "/api/v1/environments",
        "/api/v1/environments/{id}",
        "/api/v1/environments/{id}/events",
    }
