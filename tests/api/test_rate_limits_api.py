"""Rate limits over HTTP (issue 12, item 7): one user's burst gets 429 with Retry-After after its
budget while another user is unaffected; a refused command changes nothing."""

from __future__ import annotations

import pytest

from shared import agent_tokens
from shared.domain.rate_limits import AGENT_REPORTS_PER_MINUTE
from tests.api.conftest import Api
from tests.api.test_environments_api import error_of
from tests.api.test_snapshots_api import agent_token


@pytest.fixture
def limited(app_env: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Api:
    app_env.setenv("DEV8_RATE_COMMANDS_PER_MINUTE", "3")
    app_env.setenv("DEV8_RATE_READS_PER_MINUTE", "10")
    app_env.setenv("DEV8_RATE_AUTH_FAILURES_PER_MINUTE", "5")
    return request.getfixturevalue("api")  # type: ignore[no-any-return]


def test_commands_are_limited_per_owner_and_a_refused_one_changes_nothing(limited: Api) -> None:
    for n in range(3):
        assert (
            limited.call("POST", "/environments", json={"name": f"e{n}", "template": "go"}).status_code == 201
        )
    refused = limited.call("POST", "/environments", json={"name": "e3", "template": "go"})
    body = error_of(refused, 429, "RATE_LIMITED")
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 20  # a token every 20 s; less when the creates themselves took a while
    assert body["details"] == {"limit": "command", "per_minute": 3, "retry_after_seconds": wait}
    assert [e["name"] for e in limited.call("GET", "/environments").json()["environments"]] == [
        "e0",
        "e1",
        "e2",
    ]
    env_id = limited.call("GET", "/environments").json()["environments"][0]["id"]
    error_of(limited.call("POST", f"/environments/{env_id}/stop"), 429, "RATE_LIMITED")
    error_of(limited.call("PATCH", f"/environments/{env_id}", json={"name": "x"}), 429, "RATE_LIMITED")
    # Another user is unaffected.
    assert (
        limited.call("POST", "/environments", "bob", json={"name": "b", "template": "go"}).status_code == 201
    )


def test_reads_have_their_own_budget(limited: Api) -> None:
    answers = [limited.call("GET", "/environments").status_code for _ in range(12)]
    assert answers[:10] == [200] * 10 and answers[10:] == [429, 429]
    assert limited.call("GET", "/environments", "bob").status_code == 200
    # Commands are a separate budget: still allowed.
    assert limited.call("POST", "/environments", json={"name": "ok", "template": "go"}).status_code == 201


def test_failed_authentication_is_limited_per_client_address(limited: Api) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    statuses = [limited.call("GET", "/environments", None, headers=bad).status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429, 429]
    refused = limited.call("GET", "/environments", None, headers=bad)
    assert error_of(refused, 429, "RATE_LIMITED")["details"]["limit"] == "auth-failure"
    # A valid token from the same address still works: the limit is on failures.
    assert limited.call("GET", "/environments").status_code == 200


def test_two_authorization_headers_are_refused(api: Api) -> None:
    from tests.api.conftest import token

    headers = [("Authorization", f"Bearer {token('alice')}"), ("Authorization", f"Bearer {token('bob')}")]
    answer = api.http.get("/api/v1/environments", headers=headers)
    error_of(answer, 401, "UNAUTHORIZED")


def test_forged_agent_tokens_are_limited_per_address_and_the_real_agent_still_reports(limited: Api) -> None:
    """The agent routes answered a forged token 401 for ever, where a user route answers 429 once
    an address has failed too often."""
    env_id = limited.create()["id"]
    forged = {
        "Authorization": f"Bearer {agent_tokens.mint('alice', env_id)}"
    }  # the right shape, not the token
    answers = [
        limited.call("POST", f"/environments/{env_id}/activity", None, headers=forged).status_code
        for _ in range(5)
    ]
    assert answers == [401] * 5
    for path in ("activity", "snapshots/report"):
        refused = limited.call(
            "POST", f"/environments/{env_id}/{path}", None, headers=forged, json={"snapshots": []}
        )
        assert error_of(refused, 429, "RATE_LIMITED")["details"]["limit"] == "auth-failure"
    # The limit is on failures: the environment's own agent, from the same address, still reports.
    real = {"Authorization": f"Bearer {agent_token(env_id)}"}
    assert limited.call("POST", f"/environments/{env_id}/activity", None, headers=real).status_code == 200


def test_an_agent_s_reports_have_a_budget_of_their_environment(limited: Api) -> None:
    """Each report is a table write (a sample, a snapshot list); the owner's reads are a separate
    budget, so a frontend spending them does not silence the heartbeat that defers an idle stop."""
    env_id, other = limited.create()["id"], limited.create()["id"]
    real = {"Authorization": f"Bearer {agent_token(env_id)}"}
    sample = {"active": False, "sample": {"cpu_percent": 1.0, "memory_mb": 10.0, "disk_mb": 1.0}}
    answers = [
        limited.call("POST", f"/environments/{env_id}/activity", None, headers=real, json=sample).status_code
        for _ in range(AGENT_REPORTS_PER_MINUTE + 1)
    ]
    assert answers == [200] * AGENT_REPORTS_PER_MINUTE + [429]
    refused = limited.call(
        "POST", f"/environments/{env_id}/snapshots/report", None, headers=real, json={"snapshots": []}
    )
    assert error_of(refused, 429, "RATE_LIMITED")["details"]["limit"] == "agent"
    # Another environment's agent, and the owner's own reads, are untouched.
    theirs = {"Authorization": f"Bearer {agent_token(other)}"}
    assert limited.call("POST", f"/environments/{other}/activity", None, headers=theirs).status_code == 200
    assert limited.call("GET", "/environments").status_code == 200


def test_an_export_spends_a_command_not_a_read(limited: Api) -> None:
    """One export is a query per environment ever held: the read budget let one user make 600 a minute."""
    assert [limited.call("GET", "/me/export").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert error_of(limited.call("GET", "/me/export"), 429, "RATE_LIMITED")["details"]["limit"] == "command"
    assert limited.call("GET", "/environments").status_code == 200  # reads untouched


def test_a_log_tail_spends_a_command(limited: Api) -> None:
    """On ACI a log tail is an ARM call, under throttling the subscription's creates share."""
    env_id = limited.create()["id"]  # one command
    answers = [limited.call("GET", f"/environments/{env_id}/logs").status_code for _ in range(3)]
    assert answers[-1] == 429 and set(answers[:-1]) <= {200, 409}
    assert limited.call("GET", f"/environments/{env_id}").status_code == 200  # reads untouched
