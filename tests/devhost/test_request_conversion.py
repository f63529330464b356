"""The request a function receives from the local host is the one the Functions host hands the
Python worker (azure-functions-host, GrpcMessageConversionExtensions.ToRpcHttp): a repeated query
parameter or header arrives once, its values joined with ","; a query parameter with an empty
value does not arrive at all; header names compared without case; a body only with a
Content-Length."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import httpx
import pytest

from devhost.host.server import LocalHost, serve_in_thread
from tests.infra.tooling import ROOT


def echo_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="echo", methods=["GET", "POST"])
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        seen = {
            "params": dict(req.params),
            "headers": {k: v for k, v in req.headers.items()},
            "body": req.get_body().decode(),
        }
        return func.HttpResponse(json.dumps(seen), mimetype="application/json")

    return app


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    host = LocalHost(
        echo_app(),
        host_json=ROOT / "host.json",
        task_hub="echo",
        port=0,
        state_dir=tmp_path_factory.mktemp("echo"),
    )
    with serve_in_thread(host), httpx.Client(base_url=host.url, timeout=30) as client:
        yield client


def seen(http: httpx.Client, query: str, headers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    answer = http.get(f"/api/echo?{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_repeated_query_parameter_arrives_once_with_its_values_joined(http: httpx.Client) -> None:
    assert seen(http, "limit=5&limit=7&next=a")["params"] == {"limit": "5,7", "next": "a"}


def test_names_are_compared_without_case_and_the_first_spelling_is_kept(http: httpx.Client) -> None:
    assert seen(http, "Limit=5&LIMIT=7")["params"] == {"Limit": "5,7"}


def test_an_empty_query_value_is_not_passed_on(http: httpx.Client) -> None:
    assert seen(http, "limit=&status=&month")["params"] == {}
    assert seen(http, "limit=&limit=3")["params"] == {"limit": ",3"}  # joined first, then judged


def test_values_are_decoded_as_the_url_spells_them(http: httpx.Client) -> None:
    assert seen(http, "name=a+b%2Cc")["params"] == {"name": "a b,c"}


def test_a_header_sent_twice_arrives_once_joined(http: httpx.Client) -> None:
    headers = seen(http, "", [("X-Thing", "one"), ("x-thing", "two"), ("X-Forwarded-For", "203.0.113.9")])[
        "headers"
    ]
    assert headers["x-thing"] == "one,two"
    assert headers["x-forwarded-for"] == "203.0.113.9,127.0.0.1"  # the caller's address appended


def test_a_body_arrives_only_with_a_content_length(http: httpx.Client) -> None:
    def chunked() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    sent = http.post("/api/echo", content=b'{"a": 1}').json()
    assert sent["body"] == '{"a": 1}'
    answer = http.post("/api/echo", content=chunked())
    assert answer.request.headers["Transfer-Encoding"] == "chunked"
    assert answer.json()["body"] == "" and answer.json()["headers"]["transfer-encoding"] == "chunked"


def test_a_route_matches_whatever_the_case_of_its_literal_segments(http: httpx.Client) -> None:
    assert http.get("/API/Echo?x=1").json()["params"] == {"x": "1"}
