"""The OpenAPI document: valid 3.1, built from the routes the app really serves (no more, no less),
served anonymously, and describing what the API really answers."""

from __future__ import annotations

import os
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from api import openapi
from api.contract import ROUTES, Operation, Reply, route
from api.views import StatusBody
from tests.api.conftest import Api


def served_routes(app: Any, head: bool = False) -> set[tuple[str, str]]:
    """(METHOD, /path) of every HTTP function `app` registers, as the Functions host would serve them;
    HEAD, which every GET route answers too and the document leaves implied, only with `head`."""
    found = set()
    for function in app.get_functions():
        trigger = function.get_trigger()
        if getattr(trigger, "route", None) is None:
            continue
        for method in trigger.methods:
            name = str(getattr(method, "value", method)).upper()
            if head or name != "HEAD":
                found.add((name, "/" + trigger.route))
    return found


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


@pytest.fixture
def app(app_env: pytest.MonkeyPatch) -> Any:
    import function_app

    return function_app.create_app()


def test_the_document_is_valid_openapi_3_1(app: Any) -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_has_every_route_the_app_serves_and_no_other(app: Any) -> None:
    every = served_routes(app, head=True)  # the app's functions can be listed once
    served, documented = {r for r in every if r[0] != "HEAD"}, documented_routes(openapi.document())
    assert served - documented == set(), "routes the document lacks"
    assert documented - served == set(), "documented routes the app does not serve"
    assert len(served) >= 24
    heads = {path for method, path in every if method == "HEAD"}
    assert heads == {path for method, path in served if method == "GET"}  # every GET, nothing else


def test_a_route_registered_around_the_table_is_caught(app: Any) -> None:
    import azure.functions as func

    stray = func.Blueprint()

    @stray.route(route="v1/stray", methods=["GET"])
    def stray_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("")

    app.register_functions(stray)
    assert served_routes(app) - documented_routes(openapi.document()) == {("GET", "/v1/stray")}


def test_a_documented_route_the_app_lacks_is_caught(app: Any) -> None:
    import azure.functions as func

    table = dict(ROUTES)
    orphan = Operation("GET", "v1/orphan", "orphan", "unserved", "service", {200: Reply("", StatusBody)})
    route(func.Blueprint(), orphan)  # registered with a blueprint the app never takes
    try:
        assert documented_routes(openapi.document()) - served_routes(app) == {("GET", "/v1/orphan")}
    finally:
        ROUTES.clear()
        ROUTES.update(table)


def test_every_operation_describes_its_parameters_headers_and_errors(app: Any) -> None:
    document = openapi.document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = {(p["in"], p["name"]) for p in operation["parameters"]}
            assert ("header", "X-Request-ID") in names, (method, path)
            for segment in path.split("/"):
                if segment.startswith("{"):
                    assert ("path", segment[1:-1]) in names, (method, path)
            answers = operation["responses"]
            assert "500" in answers, (method, path)
            if operation["security"]:
                assert {"401", "503"} <= set(answers), (method, path)
            if "requestBody" in operation:
                assert {"400", "411", "413", "415"} <= set(answers), (method, path)
            for status, answer in answers.items():
                if "$ref" not in answer:
                    assert "X-Request-ID" in answer["headers"], (method, path, status)
    create = document["paths"]["/v1/environments"]["post"]
    assert ("header", "Idempotency-Key") in {(p["in"], p["name"]) for p in create["parameters"]}
    assert {"get", "stop", "start", "delete"} <= set(create["responses"]["201"]["links"])
    listing = document["paths"]["/v1/environments"]["get"]
    assert {"status", "limit", "next"} <= {p["name"] for p in listing["parameters"]}


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource("urn:dev8", DRAFT202012.create_resource(document))
    resolved = {"$ref": "urn:dev8#" + schema["$ref"][1:]} if "$ref" in schema else schema
    return jsonschema.Draft202012Validator(resolved, registry=registry)


def _answer_schema(document: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    answer = document["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in answer:
        answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema


def test_every_example_in_the_document_fits_its_schema(app: Any) -> None:
    document = openapi.document()
    checked = 0
    answers = [
        answer
        for item in document["paths"].values()
        for operation in item.values()
        for answer in operation["responses"].values()
    ]
    answers += list(document["components"]["responses"].values())
    for answer in answers:
        for content in answer.get("content", {}).values():
            if "example" in content:
                _validator(document, content["schema"]).validate(content["example"])
                checked += 1
    assert checked >= 25


def test_every_json_answer_has_an_example(app: Any) -> None:
    document = openapi.document()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                content = answer.get("content", {}).get("application/json")
                if content is not None and path != "/v1/openapi.json":
                    assert "example" in content, (method, path, status)


def test_the_app_serves_the_document_anonymously_and_answers_as_it_says(api: Api) -> None:
    served = api.call("GET", "/openapi.json", user=None)
    assert served.status_code == 200
    document = served.json()
    assert document == openapi.document()
    validate(document)

    def check(method: str, path: str, template: str, **kwargs: Any) -> dict[str, Any]:
        response = api.call(method, path, **kwargs)
        declared = document["paths"][template][method.lower()]["responses"]
        assert str(response.status_code) in declared, (method, path, response.status_code)
        body: dict[str, Any] = response.json()
        _validator(document, _answer_schema(document, method, template, response.status_code)).validate(body)
        return body

    one = "/v1/environments/{environment_id}"
    env = check("POST", "/environments", "/v1/environments", json={"name": "dev", "template": "node"})
    env_id = env["environment"]["id"]
    api.settled(env_id)
    check("GET", f"/environments/{env_id}", one)
    check("GET", "/environments", "/v1/environments")
    check("GET", "/environments?limit=1", "/v1/environments")
    check("GET", f"/environments/{env_id}/connection", one + "/connection")
    check("GET", f"/environments/{env_id}/events", one + "/events")
    check("GET", f"/environments/{env_id}/logs", one + "/logs")
    check("GET", f"/environments/{env_id}/snapshots", one + "/snapshots")
    check("GET", "/templates", "/v1/templates")
    check("PATCH", f"/environments/{env_id}", one, json={"keep": True})
    check("POST", f"/environments/{env_id}/stop", one + "/stop")
    check("GET", "/environments/env-0000000000000000", one)  # 404
    check("GET", "/environments", "/v1/environments", user=None)  # 401
    check("POST", "/environments", "/v1/environments", json={"name": ""})  # 400
    check("POST", "/environments", "/v1/environments", content=b"x", headers={"Content-Type": "text/plain"})
    check("GET", "/retired-environments", "/v1/retired-environments")


def test_the_docs_page_and_its_files_are_served_under_a_strict_policy(api: Api) -> None:
    page = api.call("GET", "/docs", user=None)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    for name, kind in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        asset = api.call("GET", f"/docs/{name}", user=None)
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith(kind)
        assert len(asset.content) > 10_000
    assert api.call("GET", "/docs/../../host.json", user=None).status_code == 404
    missing = api.call("GET", "/docs/index.css", user=None)
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_the_docs_page_renders_in_chromium_with_no_policy_violation(api: Api, tmp_path: Any) -> None:
    from tests.e2e.harness import CHROMIUM, Browser

    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is not installed (scripts/install-browser.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    browser = Browser(tmp_path)
    try:
        page = browser.new_page()
        complaints: list[str] = []
        page.on("console", lambda note: complaints.append(note.text) if note.type == "error" else None)
        page.goto(f"{api.host.url}/api/v1/docs")
        page.get_by_text("Create an environment").first.wait_for(timeout=60_000)
        assert page.get_by_text("Dev8 API").first.is_visible()
        assert page.locator(".opblock").count() == len(ROUTES)
        assert complaints == [], complaints
    finally:
        browser.close()
