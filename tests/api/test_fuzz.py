"""A bounded, seeded fuzz of every body route and of the Authorization header (issue 12, item 13):
whatever arrives, the answer is a documented status in the documented error format, never a 500,
and a refused request changes nothing. Hypothesis with `derandomize`: the same examples every run,
a fixed number of them, so CI time stays bounded."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import agent_tokens, wiring
from tests.api.conftest import Api, token

DOCUMENTED = {200, 201, 202, 400, 401, 403, 404, 409, 413, 415, 429}
FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a client can encode (no lone surrogates: raw bodies carry those), numbers JSON can hold.
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
CREATE_FIELDS = [
    "name", "template", "base_image", "size", "cpu_cores", "memory_gb", "storage_gb",
    "environment_variables", "secrets", "ports", "idle_timeout_minutes", "repository_url", "dotfiles_url",
]  # fmt: skip
create_bodies = st.dictionaries(st.sampled_from(CREATE_FIELDS) | text, json_values, max_size=6)
update_bodies = st.dictionaries(
    st.sampled_from(["name", "idle_timeout_minutes", "keep", "x"]), json_values, max_size=3
)
raw_bodies = st.binary(max_size=300) | json_values.map(lambda value: json.dumps(value).encode())
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "multipart/form-data"]
)


@pytest.fixture
def fuzzed(app_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Api:
    app_env.setenv("DEV8_RATE_COMMANDS_PER_MINUTE", "100000")  # the limits have their own tests
    app_env.setenv("DEV8_RATE_READS_PER_MINUTE", "100000")
    app_env.setenv("DEV8_RATE_AUTH_FAILURES_PER_MINUTE", "100000")
    return request.getfixturevalue("api")  # type: ignore[no-any-return]


def check(answer: Any) -> None:
    assert answer.status_code in DOCUMENTED, (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        body = answer.json()
        assert set(body) == {"error", "details", "code"} and body["error"] and body["code"], body


def test_create_bodies(fuzzed: Api) -> None:
    created = 0

    @FUZZ
    @given(body=create_bodies)
    def create(body: dict[str, Any]) -> None:
        nonlocal created
        answer = fuzzed.call("POST", "/environments", json=body)
        check(answer)
        created += answer.status_code == 201

    create()
    # Nothing but the accepted creates made an environment.
    assert len(fuzzed.call("GET", "/environments").json()["environments"]) == created


def test_raw_bodies_and_content_types(fuzzed: Api) -> None:
    @FUZZ
    @given(body=raw_bodies, content_type=content_types)
    def send(body: bytes, content_type: str) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        check(fuzzed.call("POST", "/environments", headers=headers, content=body))

    send()


def test_update_and_restore_bodies(fuzzed: Api) -> None:
    env = fuzzed.create()
    fuzzed.settled(env["id"])

    @FUZZ
    @given(body=update_bodies, restore=json_values)
    def change(body: dict[str, Any], restore: Any) -> None:
        check(fuzzed.call("PATCH", f"/environments/{env['id']}", json=body))
        check(fuzzed.call("POST", f"/environments/{env['id']}/snapshots/aaaaaaaa/restore", json=restore))

    change()
    listed = fuzzed.call("GET", "/environments").json()["environments"]
    assert [e["id"] for e in listed] == [env["id"]]


def test_snapshot_reports(fuzzed: Api) -> None:
    env = fuzzed.create()
    fuzzed.settled(env["id"])
    record = wiring.store().get("alice", env["id"])
    agent = wiring.environments().secure_environment(record)[agent_tokens.AGENT_TOKEN_VARIABLE]

    @FUZZ
    @given(body=json_values, use_agent=st.booleans())
    def report(body: Any, use_agent: bool) -> None:
        headers = {"Authorization": f"Bearer {agent}"} if use_agent else {}
        check(
            fuzzed.call(
                "POST", f"/environments/{env['id']}/snapshots/report", None, json=body, headers=headers
            )
        )

    report()
    assert fuzzed.call("GET", f"/environments/{env['id']}/snapshots").json() == {"snapshots": []}


def test_authorization_headers(fuzzed: Api) -> None:
    good = token("alice")
    headers = (
        st.text(max_size=60)
        | st.text(max_size=60).map(lambda text: f"Bearer {text}")
        | st.sampled_from(
            [f"Bearer {good}x", f"bearer  {good}", f"Basic {good}", good, f"Bearer {good[:-3]}"]
        )
    )

    @FUZZ
    @given(header=headers)
    def call(header: str) -> None:
        try:
            answer = fuzzed.http.get("/api/v1/environments", headers={"Authorization": header})
        except (UnicodeEncodeError, ValueError, httpx.LocalProtocolError):
            return  # not a header any client can send
        check(answer)
        assert answer.status_code in (200, 400, 401)  # 400: a header the host cannot read

    call()
