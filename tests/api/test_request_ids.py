"""Following one request (issue 12, item 12): a request id accepted or made, echoed on every answer,
and carried into every log line of the API call, its orchestration and each of its activities,
as JSON lines; no secret in any line."""

from __future__ import annotations

import io
import time

import pytest

from shared import agent_tokens, wiring
from shared.secrets import PASSWORD_KEY, SNAPSHOT_PASSWORD_KEY
from tests.api.conftest import Api, parsed, token


def test_one_request_id_across_the_api_call_its_orchestration_and_every_activity(
    api: Api, log_lines: io.StringIO
) -> None:
    answer = api.call(
        "POST",
        "/environments",
        json={"name": "traced", "template": "node", "secrets": {"GITHUB_TOKEN": "ghp_do_not_log_me"}},
        headers={"X-Request-ID": "trace-me-0042"},
    )
    assert answer.status_code == 201 and answer.headers["x-request-id"] == "trace-me-0042"
    env_id = answer.json()["environment"]["id"]
    assert api.settled(env_id)["status"] == "RUNNING"
    activities = {"ensure_workspace", "create_compute", "compute_status", "settle_environment"}
    deadline = time.monotonic() + 30  # the settle's own log line lands just after the record
    while time.monotonic() < deadline:
        traced = [line for line in parsed(log_lines) if line.get("request_id") == "trace-me-0042"]
        if activities <= {line.get("activity") for line in traced}:
            break
        time.sleep(0.05)
    loggers = {line["logger"] for line in traced}
    assert {"dev8.api.access", "dev8.orchestrators", "dev8.activities"} <= loggers, loggers
    assert activities <= {line.get("activity") for line in traced}
    access = next(line for line in traced if line["logger"] == "dev8.api.access")
    assert (access["route"], access["status"]) == ("/api/v1/environments", 201) and access["duration_ms"] >= 0
    assert all(line.get("environment_id") == env_id for line in traced if line["logger"] != "dev8.api.access")
    started = next(line for line in traced if line["logger"] == "dev8.orchestrators")
    assert started["message"] == "orchestration provision_environment started"

    # No secret in any line: the IDE password, the agent token, the repository password, the
    # user's secret, the caller's JWT.
    connection = api.call("GET", f"/environments/{env_id}/connection")
    record = wiring.store().get("alice", env_id)
    secure = wiring.environments().secure_environment(record)
    secrets = [
        connection.json()["password"],
        secure[agent_tokens.AGENT_TOKEN_VARIABLE],
        secure[SNAPSHOT_PASSWORD_KEY],
        secure[PASSWORD_KEY],
        "ghp_do_not_log_me",
        token("alice"),
    ]
    text = log_lines.getvalue()
    assert not [secret for secret in secrets if secret in text]


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 65, "semi;colon", "new\nline"])
def test_a_missing_or_malformed_request_id_is_replaced_and_echoed(api: Api, given: str | None) -> None:
    headers = {"X-Request-ID": given} if given is not None else {}
    try:
        answer = api.call("GET", "/environments", headers=headers)
    except Exception:  # a header no client can send (a newline)
        return
    made = answer.headers["x-request-id"]
    assert made != given and len(made) == 32 and int(made, 16) >= 0


def test_every_answer_echoes_the_request_id(api: Api) -> None:
    for method, path, user in (
        ("GET", "/health", None),
        ("GET", "/ready", None),
        ("GET", "/environments", None),  # a 401
        ("GET", "/environments/env-0000000000000000", "alice"),  # a 404
        ("POST", "/environments", "alice"),  # a 400
    ):
        answer = api.call(method, path, user, headers={"X-Request-ID": "abc.123"})
        assert answer.headers["x-request-id"] == "abc.123", (method, path, answer.status_code)
