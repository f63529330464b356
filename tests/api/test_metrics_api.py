"""Resource samples through the real app over Azurite: the environment's agent reports them with
its activity, the owner reads them at GET .../metrics; nobody else can do either."""

from __future__ import annotations

from datetime import datetime

from shared import wiring
from tests.api.conftest import Api
from tests.api.test_environments_api import error_of

SAMPLE = {"cpu_percent": 37.5, "memory_mb": 812.4, "disk_mb": 1534.2}
SETUP = {"step": "repository", "detail": "fatal: repository 'https://github.com/a/b/' not found"}


def agent_of(api: Api, env_id: str) -> dict[str, str]:
    spec = wiring.compute().spec_of(f"dev8-{env_id.removeprefix('env-')}")
    return {"Authorization": f"Bearer {spec.secure_environment['DEV8_AGENT_TOKEN']}"}


def report(api: Api, env_id: str, body: object, headers: dict[str, str]) -> object:
    return api.call("POST", f"/environments/{env_id}/activity", None, json=body, headers=headers)


def test_the_agents_samples_are_the_owners_metrics(api: Api) -> None:
    env = api.create()
    api.settled(env["id"])
    agent = agent_of(api, env["id"])
    assert api.call("GET", f"/environments/{env['id']}/metrics").json() == {
        "environment_id": env["id"],
        "resolution_seconds": 60,
        "hours": 24,
        "samples": [],
    }

    answer = report(api, env["id"], {"active": False, "sample": SAMPLE}, agent)
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    metrics = api.call("GET", f"/environments/{env['id']}/metrics", params={"hours": "1"}).json()
    assert metrics["hours"] == 1
    (point,) = metrics["samples"]
    assert {name: point[name] for name in SAMPLE} == SAMPLE
    at = datetime.fromisoformat(point["at"].replace("Z", "+00:00"))
    assert at.second == 0 and at.microsecond == 0  # the minute it was received in

    # The old agent's report (an empty object) still counts as activity, with no sample.
    assert report(api, env["id"], {}, agent).status_code == 200  # type: ignore[attr-defined]
    assert len(api.call("GET", f"/environments/{env['id']}/metrics").json()["samples"]) == 1

    # What the workspace setup could not do: the running environment's reason, once in its trail.
    assert report(api, env["id"], {"active": False, "setup": [SETUP]}, agent).status_code == 200  # type: ignore[attr-defined]
    reason = f"workspace setup: the repository was not cloned ({SETUP['detail']})"
    shown = api.call("GET", f"/environments/{env['id']}").json()["environment"]
    assert (shown["status"], shown["status_reason"]) == ("RUNNING", reason)
    events = api.call("GET", f"/environments/{env['id']}/events").json()
    assert [e["reason"] for e in events["events"]].count(reason) == 1

    # Another owner's environment is not found, for reading and for the owner's own report alike.
    error_of(api.call("GET", f"/environments/{env['id']}/metrics", "bob"), 404, "NOT_FOUND")
    error_of(api.call("POST", f"/environments/{env['id']}/activity", "bob", json={}), 404, "NOT_FOUND")


def test_bad_reports_are_refused_and_change_nothing(api: Api) -> None:
    env = api.create()
    api.settled(env["id"])
    env_reason = api.settled(env["id"])["status_reason"]
    agent = agent_of(api, env["id"])
    owner = api.as_user("alice")
    refusals = [
        ({"sample": SAMPLE}, owner),  # a sample is the agent's to send, not the user's
        ({"setup": [SETUP]}, owner),  # so is a setup report
        ({"setup": [{**SETUP, "step": "ssh"}]}, agent),
        ({"setup": [{**SETUP, "detail": "two\nlines"}]}, agent),
        ({"setup": [{**SETUP, "detail": "x" * 301}]}, agent),
        ({"setup": [SETUP] * 5}, agent),
        ({"sample": {**SAMPLE, "cpu_percent": 150.0}}, agent),
        ({"sample": {**SAMPLE, "memory_mb": -1.0}}, agent),
        ({"sample": {**SAMPLE, "cpu_percent": "37"}}, agent),  # strict: a string is no number
        ({"sample": {**SAMPLE, "load": 1.0}}, agent),
        ({"active": "yes"}, agent),
        ({"busy": True}, agent),
        ([SAMPLE], agent),
    ]
    for body, headers in refusals:
        error_of(report(api, env["id"], body, headers), 400, "VALIDATION_ERROR")  # type: ignore[arg-type]
    assert api.call("GET", f"/environments/{env['id']}/metrics").json()["samples"] == []
    assert api.call("GET", f"/environments/{env['id']}").json()["environment"]["status_reason"] == env_reason
    for hours in ("0", "25", "x", "-1"):
        response = api.call("GET", f"/environments/{env['id']}/metrics", params={"hours": hours})
        error_of(response, 400, "VALIDATION_ERROR")
    # A stranger's sample is refused before its body is read: 401, not 400.
    stranger = {"Authorization": "Bearer d8a.not-a-token"}
    error_of(report(api, env["id"], {"sample": {"cpu_percent": 999}}, stranger), 401, "UNAUTHORIZED")  # type: ignore[arg-type]
