"""The snapshot routes over HTTP (the real app on the local host, simulated compute): the
documented shapes, the owner-only rule, the status rules and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared import agent_tokens, wiring
from tests.api.conftest import Api
from tests.api.test_environments_api import error_of
from tests.fakes import without_phase_timings

RESTIC_LIST = [
    {"short_id": "aaaaaaaa", "time": "2026-12-02T09:00:00.123456789+01:00", "tags": ["reason:interval"]},
    {"short_id": "bbbbbbbb", "time": "2026-12-02T09:05:00Z", "tags": ["reason:manual"], "paths": ["."]},
]


def agent_token(env_id: str, owner: str = "alice") -> str:
    env = wiring.store().get(owner, env_id)
    return wiring.environments().secure_environment(env)[agent_tokens.AGENT_TOKEN_VARIABLE]


def report(api: Api, env_id: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.call("POST", f"/environments/{env_id}/snapshots/report", None, json=body, headers=headers)


@pytest.fixture
def running(api: Api) -> dict[str, Any]:
    env = api.create()
    assert api.settled(env["id"])["status"] == "RUNNING"
    return env


def test_the_agent_reports_and_the_owner_lists(api: Api, running: dict[str, Any]) -> None:
    env_id = running["id"]
    assert api.call("GET", f"/environments/{env_id}/snapshots").json() == {"snapshots": []}
    event = {"event": "snapshot", "id": "bbbbbbbb", "reason": "manual", "files": 20000, "bytes_added": 512}
    answer = report(api, env_id, {"event": event, "snapshots": RESTIC_LIST}, agent_token(env_id))
    assert answer.status_code == 200 and answer.json() == {"listed": 2}
    listed = api.call("GET", f"/environments/{env_id}/snapshots")
    assert listed.status_code == 200
    assert listed.json() == {
        "snapshots": [
            {
                "id": "bbbbbbbb",
                "taken_at": "2026-12-02T09:05:00Z",
                "reason": "manual",
                "files": 20000,
                "bytes_added": 512,
            },
            {"id": "aaaaaaaa", "taken_at": "2026-12-02T08:00:00.123456Z", "reason": "interval", "files": None,
             "bytes_added": None},
        ]
    }  # fmt: skip


def test_a_report_without_the_environments_own_token_is_401(api: Api, running: dict[str, Any]) -> None:
    env_id = running["id"]
    other = api.create(name="other")
    api.settled(other["id"])
    body = {"snapshots": RESTIC_LIST}
    for token in (None, "garbage", agent_token(other["id"])):
        error_of(report(api, env_id, body, token), 401, "UNAUTHORIZED")
        # Who is asking comes first: a stranger's malformed body is 401 too, not a 400.
        error_of(report(api, env_id, {"snapshots": "all"}, token), 401, "UNAUTHORIZED")
    user = api.call("POST", f"/environments/{env_id}/snapshots/report", json=body)  # the owner's JWT
    error_of(user, 401, "UNAUTHORIZED")
    assert api.call("GET", f"/environments/{env_id}/snapshots").json() == {"snapshots": []}


@pytest.mark.parametrize(
    "body",
    [
        {"snapshots": [{"short_id": "zz", "time": "2026-12-02T09:00:00Z"}]},
        {"snapshots": "all of them"},
        {"snapshots": [], "surprise": True},
        [],
    ],
)
def test_a_malformed_report_is_400_and_changes_nothing(api: Api, running: dict[str, Any], body: Any) -> None:
    env_id = running["id"]
    error_of(report(api, env_id, body, agent_token(env_id)), 400, "VALIDATION_ERROR")
    assert api.call("GET", f"/environments/{env_id}/snapshots").json() == {"snapshots": []}


def test_a_manual_snapshot_is_202_while_running_and_409_otherwise(api: Api, running: dict[str, Any]) -> None:
    env_id = running["id"]
    taken = api.call("POST", f"/environments/{env_id}/snapshots")
    assert taken.status_code == 202, taken.text
    request_id = taken.json()["snapshot_request"]["id"]
    assert taken.json() == {"snapshot_request": {"id": request_id, "environment_id": env_id}}
    events = api.call("GET", f"/environments/{env_id}/events").json()["events"]
    assert events[0]["reason"] == f"manual snapshot requested ({request_id})"
    assert api.call("POST", f"/environments/{env_id}/stop").status_code == 202
    assert api.settled(env_id)["status"] == "STOPPED"
    error_of(api.call("POST", f"/environments/{env_id}/snapshots"), 409, "INVALID_STATE")


def test_restore_rules(api: Api, running: dict[str, Any]) -> None:
    env_id = running["id"]
    report(api, env_id, {"snapshots": RESTIC_LIST}, agent_token(env_id))
    restore = f"/environments/{env_id}/snapshots/aaaaaaaa/restore"
    error_of(api.call("POST", restore), 409, "INVALID_STATE")  # RUNNING
    api.call("POST", f"/environments/{env_id}/stop")
    assert api.settled(env_id)["status"] == "STOPPED"
    error_of(api.call("POST", f"/environments/{env_id}/snapshots/cccccccc/restore"), 404, "NOT_FOUND")
    error_of(api.call("POST", restore, json={"new_environment": "yes"}), 400, "VALIDATION_ERROR")
    error_of(api.call("POST", restore, json={"other": 1}), 400, "VALIDATION_ERROR")
    chosen = api.call("POST", restore)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["restore"]["snapshot"]["id"] == "aaaaaaaa"
    assert chosen.json()["restore"]["on"] == "next start"
    # The next start restores it; the trail says so.
    assert api.call("POST", f"/environments/{env_id}/start").status_code == 202
    assert api.settled(env_id)["status"] == "RUNNING"
    reasons = [e["reason"] for e in api.call("GET", f"/environments/{env_id}/events").json()["events"]]
    assert without_phase_timings(reasons[0]) == "running; restored snapshot aaaaaaaa"
    assert any(r.startswith("the next start restores snapshot aaaaaaaa") for r in reasons)
    assert wiring.store().get("alice", env_id).restore_snapshot is None  # done: later starts take the latest


def test_restore_into_a_new_environment(api: Api, running: dict[str, Any]) -> None:
    env_id = running["id"]
    report(api, env_id, {"snapshots": RESTIC_LIST}, agent_token(env_id))
    made = api.call(
        "POST", f"/environments/{env_id}/snapshots/bbbbbbbb/restore", json={"new_environment": True}
    )
    assert made.status_code == 201, made.text
    new = made.json()["environment"]
    assert made.headers["location"] == f"/api/v1/environments/{new['id']}" and new["id"] != env_id
    assert api.settled(new["id"])["status"] == "RUNNING"
    events = api.call("GET", f"/environments/{new['id']}/events").json()["events"]
    assert without_phase_timings(events[0]["reason"]) == f"running; restored snapshot bbbbbbbb of {env_id}"
    assert events[-1]["reason"] == f"restored from snapshot bbbbbbbb of {env_id}"


def test_another_owner_gets_404_on_every_snapshot_route(api: Api, running: dict[str, Any]) -> None:
    env_id = running["id"]
    report(api, env_id, {"snapshots": RESTIC_LIST}, agent_token(env_id))
    for method, path, body in (
        ("GET", "/snapshots", None),
        ("POST", "/snapshots", None),
        ("POST", "/snapshots/aaaaaaaa/restore", None),
        ("POST", "/snapshots/aaaaaaaa/restore", {"new_environment": True}),
    ):
        error_of(api.call(method, f"/environments/{env_id}{path}", "mallory", json=body), 404, "NOT_FOUND")
    assert api.call("GET", "/environments", "mallory").json() == {"environments": []}
    assert [e["from_status"] for e in api.call("GET", f"/environments/{env_id}/events").json()["events"]] == [
        "CREATING",
        None,
    ]
