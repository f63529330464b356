"""Bad input over HTTP (issue 12, items 1-6): each gets the documented error format and changes
nothing. Regression tests for what an attacker and a careless client found."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from tests.api.conftest import Api
from tests.api.test_environments_api import error_of
from tests.conftest import JWT_SECRET

VALID = {"name": "dev", "template": "node"}


def nothing_created(api: Api, user: str = "alice") -> None:
    assert api.call("GET", "/environments", user).json() == {"environments": []}


def raw_post(api: Api, path: str, body: bytes, content_type: str, method: str = "POST") -> Any:
    return api.call(method, path, headers={"Content-Type": content_type}, content=body)


@pytest.mark.parametrize("depth", [17, 1000, 100_000])
def test_a_deeply_nested_body_is_refused_not_500(api: Api, depth: int) -> None:
    nested = (
        b'{"name": "dev", "template": "node", "environment_variables": '
        + b'{"a":' * depth
        + b"1"
        + b"}" * depth
        + b"}"
    )
    answer = raw_post(api, "/environments", nested, "application/json")
    if len(nested) > 64 * 1024:
        assert (
            error_of(answer, 413, "PAYLOAD_TOO_LARGE")["error"] == "request body is larger than 65536 bytes"
        )
    else:
        assert "nested deeper than 16" in error_of(answer, 400, "VALIDATION_ERROR")["error"]
    nothing_created(api)


def as_stored(api: Api, env_id: str) -> dict[str, Any]:
    """The environment as the API shows it, but for `usage`, which grows with the clock."""
    env: dict[str, Any] = api.call("GET", f"/environments/{env_id}").json()["environment"]
    env.pop("usage")
    return env


def test_a_deeply_nested_patch_is_400_and_changes_nothing(api: Api) -> None:
    env = api.create()
    api.settled(env["id"])
    before = as_stored(api, env["id"])
    body = b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    error_of(
        raw_post(api, f"/environments/{env['id']}", body, "application/json", "PATCH"),
        400,
        "VALIDATION_ERROR",
    )
    assert as_stored(api, env["id"]) == before


def test_brackets_inside_strings_are_not_nesting(api: Api) -> None:
    body = {**VALID, "environment_variables": {"BRACKETS": '[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{\\"]'}}
    assert api.call("POST", "/environments", json=body).status_code == 201


@pytest.mark.parametrize("exp", [1e300, 10**30])
def test_a_validly_signed_token_with_an_absurd_expiry_is_401(api: Api, exp: float) -> None:
    token = jwt.encode(
        {"sub": "alice", "iat": int(time.time()), "exp": exp, "iss": "dev8-tests", "aud": "dev8-api"},
        JWT_SECRET,
        algorithm="HS256",
    )
    answer = api.call("GET", "/environments", None, headers={"Authorization": f"Bearer {token}"})
    error_of(answer, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_cores", "2"),
        ("cpu_cores", True),
        ("memory_gb", "4"),
        ("storage_gb", True),
        ("storage_gb", 20.5),
        ("ports", ["3000"]),
        ("ports", [True]),
        ("idle_timeout_minutes", "30"),
        ("name", 7),
        ("environment_variables", {"A": 1}),
        ("secrets", {"GITHUB_TOKEN": True}),
    ],
)
def test_types_are_not_coerced_on_create(api: Api, field: str, value: Any) -> None:
    details = error_of(
        api.call("POST", "/environments", json={**VALID, field: value}), 400, "VALIDATION_ERROR"
    )
    assert any(d["field"].split(".")[0] == field for d in details["details"]), details
    nothing_created(api)


@pytest.mark.parametrize(
    ("field", "value"), [("keep", "yes"), ("keep", 1), ("idle_timeout_minutes", "30"), ("name", ["x"])]
)
def test_types_are_not_coerced_on_update(api: Api, field: str, value: Any) -> None:
    env = api.create()
    api.settled(env["id"])
    before = as_stored(api, env["id"])
    details = error_of(
        api.call("PATCH", f"/environments/{env['id']}", json={field: value}), 400, "VALIDATION_ERROR"
    )
    assert any(d["field"] == field for d in details["details"]), details
    assert as_stored(api, env["id"]) == before


@pytest.mark.parametrize("name", ["a\u0000b", "line\nbreak", "right\u202eto left", "zero\u200bwidth"])
def test_a_name_that_is_not_printable_text_is_400_naming_the_field(api: Api, name: str) -> None:
    """On create and on rename alike, so a form can put the message beside the name field."""
    created = error_of(
        api.call("POST", "/environments", json={**VALID, "name": name}), 400, "VALIDATION_ERROR"
    )
    assert created["details"] == [{"field": "name", "message": "name must be printable text"}]
    nothing_created(api)
    env = api.create()
    api.settled(env["id"])
    before = as_stored(api, env["id"])
    renamed = error_of(
        api.call("PATCH", f"/environments/{env['id']}", json={"name": name}), 400, "VALIDATION_ERROR"
    )
    assert renamed["details"] == [{"field": "name", "message": "name must be printable text"}]
    assert as_stored(api, env["id"]) == before


@pytest.mark.parametrize("count", ["\u00b2", "\u0663", "\u2460", "1_0", " 5", "5 ", "1" + "0" * 5000])
def test_a_count_that_is_not_ascii_digits_is_400_naming_it(api: Api, count: str) -> None:
    """str.isdigit() takes "²" (which int() refuses: it was a 500) and "٣"; int() refuses 4,301 digits."""
    env = api.create()
    api.settled(env["id"])
    for path, name in [
        ("/environments", "limit"),
        (f"/environments/{env['id']}/events", "limit"),
        (f"/environments/{env['id']}/logs", "tail"),
        (f"/environments/{env['id']}/metrics", "hours"),
    ]:
        details = error_of(api.call("GET", path, params={name: count}), 400, "VALIDATION_ERROR")
        assert details["details"][0]["field"] == name, path


def test_a_long_unknown_status_filter_is_400_without_being_sent_back(api: Api) -> None:
    answer = api.call("GET", "/environments", params={"status": "A" * 5000})
    details = error_of(answer, 400, "VALIDATION_ERROR")
    assert details["error"] == "unknown status (too long to show)" and len(answer.content) < 400
    assert (
        error_of(api.call("GET", "/environments", params={"status": "deleted"}), 400, "VALIDATION_ERROR")[
            "error"
        ]
        == "unknown status 'deleted'"
    )  # a short one is named, as before


def test_a_month_in_another_script_s_digits_is_400(api: Api) -> None:
    error_of(
        api.call("GET", "/usage", params={"month": "\u0662\u0660\u0662\u0666-12"}), 400, "VALIDATION_ERROR"
    )


def test_duplicate_keys_are_400(api: Api) -> None:
    body = b'{"name": "dev", "template": "node", "template": "go"}'
    details = error_of(raw_post(api, "/environments", body, "application/json"), 400, "VALIDATION_ERROR")
    assert details["details"] == [{"field": "template", "message": "given more than once"}]
    nested = b'{"name": "dev", "template": "node", "secrets": {"GITHUB_TOKEN": "a", "GITHUB_TOKEN": "b"}}'
    error_of(raw_post(api, "/environments", nested, "application/json"), 400, "VALIDATION_ERROR")
    nothing_created(api)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"name": "dev", "template": "node"}'),
        ("application/x-www-form-urlencoded", b"name=dev&template=node"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\ndev\r\n--x--\r\n',
        ),
        ("application/xml", b"<environment><name>dev</name><template>node</template></environment>"),
        ("", b'{"name": "dev", "template": "node"}'),
    ],
)
def test_a_body_that_is_not_json_is_415(api: Api, content_type: str, body: bytes) -> None:
    error_of(raw_post(api, "/environments", body, content_type), 415, "UNSUPPORTED_MEDIA_TYPE")
    nothing_created(api)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        # mtime=0: gzip stamps the time, and a test id that differs between pytest-xdist's workers
        # (their imports a second apart) stops the whole run ("different tests were collected").
        ("gzip", gzip.compress(json.dumps(VALID).encode(), mtime=0)),  # it was read as JSON locally
        ("gzip", json.dumps(VALID).encode()),  # not gzip at all: it was a 500 locally
        ("deflate", b"not deflate"),
        ("br", b"not brotli"),
        ("x-unknown", json.dumps(VALID).encode()),
    ],
    ids=["gzip", "gzip-but-not", "deflate", "br", "unknown"],
)
def test_a_compressed_body_is_415_and_changes_nothing(api: Api, encoding: str, body: bytes) -> None:
    """As in Azure, where the Functions host passes a compressed body on as it came."""
    answer = api.call(
        "POST",
        "/environments",
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        content=body,
    )
    details = error_of(answer, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert details["error"] == "the request body must not be compressed (no Content-Encoding)"
    nothing_created(api)


def chunks(body: bytes) -> Iterator[bytes]:
    """A body httpx sends chunked (Transfer-Encoding), with no Content-Length."""
    yield body[:10]
    yield body[10:]


def test_a_chunked_body_is_411_and_changes_nothing(api: Api) -> None:
    """The Functions host passes a body on only with a Content-Length, so a chunked one reached
    the app as no body ("must be a JSON object") in Azure, and was read whole locally."""
    answer = api.call(
        "POST",
        "/environments",
        headers={"Content-Type": "application/json"},
        content=chunks(json.dumps(VALID).encode()),
    )
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    details = error_of(answer, 411, "LENGTH_REQUIRED")
    assert details["error"] == "the request body must be sent with a Content-Length, not chunked"
    nothing_created(api)


def test_a_chunked_body_where_a_body_is_optional_is_411_not_the_defaults(api: Api) -> None:
    """A restore's body may be left out (restore in place); sent chunked, it is refused rather
    than read as no body, which would restore in place what was asked into a new environment."""
    env = api.create()["id"]
    answer = api.call(
        "POST",
        f"/environments/{env}/snapshots/0badf00d/restore",
        headers={"Content-Type": "application/json"},
        content=chunks(b'{"new_environment": true}'),
    )
    error_of(answer, 411, "LENGTH_REQUIRED")


def test_json_with_a_charset_is_json(api: Api) -> None:
    answer = raw_post(
        api, "/environments", b'{"name": "dev", "template": "node"}', "Application/JSON; charset=utf-8"
    )
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("field", ["environment_variables", "secrets"])
@pytest.mark.parametrize("value", ["before\u0000after", "\u0000"])
def test_values_no_process_environment_can_hold_are_400(api: Api, field: str, value: str) -> None:
    name = "GITHUB_TOKEN" if field == "secrets" else "GREETING"
    answer = api.call("POST", "/environments", json={**VALID, field: {name: value}})
    details = error_of(answer, 400, "VALIDATION_ERROR")
    assert value not in answer.text  # the value (a secret, maybe) is never echoed
    assert details["details"][0]["field"].startswith(field)
    nothing_created(api)


def test_a_lone_surrogate_is_400(api: Api) -> None:
    body = b'{"name": "dev", "template": "node", "environment_variables": {"A": "\\ud800"}}'
    error_of(raw_post(api, "/environments", body, "application/json"), 400, "VALIDATION_ERROR")
    nothing_created(api)


def test_every_answer_carries_the_security_headers(api: Api) -> None:
    env = api.create()
    api.settled(env["id"])
    answers = [
        api.call("GET", "/health", None),
        api.call("GET", "/environments"),
        api.call("GET", f"/environments/{env['id']}/connection"),
        api.call("GET", f"/environments/{env['id']}", "mallory"),
        api.call("GET", "/environments", None),
        api.call("POST", "/environments", json={"name": 1}),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["strict-transport-security"].startswith("max-age=")
    # The host's own answers too: an unknown route, a method the route does not take.
    for answer in (api.http.get("/api/v1/nowhere"), api.http.request("PUT", "/api/v1/health")):
        assert answer.status_code == 404 and answer.headers["x-content-type-options"] == "nosniff"


# --- the local host's Durable management API (issue 12, item 8) -------------------------------------

DURABLE = "/runtime/webhooks/durabletask"


def test_the_durable_webhooks_need_the_hosts_system_key(api: Api) -> None:
    env = api.create()
    assert api.settled(env["id"])["status"] == "RUNNING"  # the app's own client still works
    key = api.host.system_key
    deadline = time.monotonic() + 30  # the provisioning orchestration ends just after it settles
    while True:
        instances = api.http.get(f"{DURABLE}/instances/", params={"code": key})
        assert instances.status_code == 200 and instances.json()
        before = instances.json()
        if all(i["runtimeStatus"] == "Completed" for i in before) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    some_id = before[0]["instanceId"]
    for code in (None, "", "wrong", key[:-1]):
        params = {"code": code} if code is not None else {}
        calls = [
            api.http.get(f"{DURABLE}/instances/", params=params),
            api.http.get(f"{DURABLE}/instances/{some_id}", params=params),
            api.http.post(f"{DURABLE}/instances/{some_id}/terminate", params={**params, "reason": "x"}),
            api.http.post(f"{DURABLE}/instances/{some_id}/raiseEvent/go", params=params, json={}),
            api.http.post(
                f"{DURABLE}/orchestrators/delete_environment/evil",
                params=params,
                json={"owner": "alice", "environment_id": env["id"], "operation": "x"},
            ),
            api.http.delete(f"{DURABLE}/instances/{some_id}", params=params),
        ]
        assert [c.status_code for c in calls] == [401] * len(calls), [c.text for c in calls]
        assert all(env["id"] not in c.text for c in calls)

    # Nothing changed: the same instances, the environment still RUNNING with its workspace.
    def summary(listed: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return sorted((i["instanceId"], i["runtimeStatus"]) for i in listed)

    assert summary(api.http.get(f"{DURABLE}/instances/", params={"code": key}).json()) == summary(before)
    assert api.call("GET", f"/environments/{env['id']}").json()["environment"]["status"] == "RUNNING"
    # The management URLs the host hands out carry the key, as the real host's do.
    status = api.http.get(f"{DURABLE}/instances/{some_id}", params={"code": key})
    assert status.status_code == 200


def test_the_system_key_is_new_at_each_start_and_kept_private(tmp_path, app_env) -> None:
    import stat

    import function_app
    from devhost.dev8 import local_host
    from devhost.host.server import SYSTEM_KEY_FILE

    first = local_host(function_app.create_app(), port=0, state_dir=tmp_path)
    written = (tmp_path / SYSTEM_KEY_FILE).read_text()
    second = local_host(function_app.create_app(), port=0, state_dir=tmp_path)
    assert written == first.system_key != second.system_key == (tmp_path / SYSTEM_KEY_FILE).read_text()
    assert stat.S_IMODE((tmp_path / SYSTEM_KEY_FILE).stat().st_mode) == 0o600
    assert len(first.system_key) >= 40


# --- the local host's transport errors (issue 12, item 9) --------------------------------------------


def raw_exchange(api: Api, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (httpx would refuse to); the status, headers and body answered."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(api.host.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v1/environments HTTP/1.1\r\nHost: x\r\nX-Secret-Marker: " + b"M" * 20_000 + b"\r\n\r\n",
        b"GET /api/v1/" + b"M" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/environments HTTP/1.1\r\nHost: x\r\nBad Header With Spaces MMMM: 1\r\n\r\n",
    ],
    ids=["oversized header", "oversized request line", "malformed header"],
)
def test_what_the_host_cannot_read_is_answered_in_the_error_format_without_echo(
    api: Api, request_bytes: bytes
) -> None:
    status, headers, body = raw_exchange(api, request_bytes)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    parsed = json.loads(body)
    assert set(parsed) == {"error", "details", "code"}
    assert b"MMMM" not in body and b"Marker" not in body


def test_a_body_over_64_kib_is_413_and_changes_nothing(api: Api) -> None:
    """DESIGN.md's 413 for an oversized body (it was a 400 up to the local host's own limit)."""
    body = json.dumps({**VALID, "name": "x" * 70_000}).encode()
    details = error_of(raw_post(api, "/environments", body, "application/json"), 413, "PAYLOAD_TOO_LARGE")
    assert details["error"] == "request body is larger than 65536 bytes"
    nothing_created(api)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({f"k{i}": 1 for i in range(5000)}, "unknown fields: k0, k1, k10, "),
        ({**VALID, "ports": ["a"] * 12_000}, "request body is invalid (20 of 12000 problems shown)"),
        ({**VALID, "k" * 5000: 1}, "unknown fields: " + "k" * 100 + "..."),
    ],
)
def test_an_error_names_at_most_20_problems(api: Api, body: dict[str, Any], error: str) -> None:
    """A 60 KB body of 15,000 bad items (60 KB) was answered with a megabyte of details, one per item."""
    answer = raw_post(api, "/environments", json.dumps(body).encode(), "application/json")
    details = error_of(answer, 400, "VALIDATION_ERROR")
    assert details["error"].startswith(error) and len(details["details"]) <= 20
    assert len(answer.content) < 4096
    nothing_created(api)


@pytest.mark.parametrize("field", ["environment_variables", "secrets"])
def test_a_long_bad_variable_name_is_not_sent_back_whole(api: Api, field: str) -> None:
    answer = raw_post(
        api, "/environments", json.dumps({**VALID, field: {"Z" * 50_000: "v"}}).encode(), "application/json"
    )
    message = error_of(answer, 400, "VALIDATION_ERROR")["details"][0]["message"]
    assert "Z" * 128 + "..." in message and len(answer.content) < 1024
    nothing_created(api)


@pytest.mark.parametrize("unit", [b'"\\', b'\\"'])
def test_a_body_of_open_strings_is_400_and_holds_nothing_up(api: Api, unit: bytes) -> None:
    """64 KB of `"\\` held the event loop, and every request behind it, for 12-17 s while the
    nesting count's pattern backtracked (tests/unit/test_body_depth.py holds the count)."""
    answer = raw_post(api, "/environments", unit * 32_000, "application/json")
    assert error_of(answer, 400, "VALIDATION_ERROR")["error"] == "request body must be valid JSON"
    nothing_created(api)


def test_a_body_over_the_hosts_limit_is_413_in_the_error_format(api: Api) -> None:
    answer = api.call(
        "POST",
        "/environments",
        headers={"Content-Type": "application/json"},
        content=b"[" + b" " * 2_000_000 + b"]",
    )
    body = error_of(answer, 413, "PAYLOAD_TOO_LARGE")
    assert "2000" not in body["error"]
    nothing_created(api)
