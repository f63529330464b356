"""GET /environments/{id}/logs (issue 13, item 6): the container's recent log, bounded, owner
only, and with the environment's secrets taken out (a secret planted in the workspace's output
never comes back)."""

from __future__ import annotations

from shared import wiring
from shared.domain.logs import LogSource
from shared.domain.resources import compute_name
from tests.api.conftest import Api
from tests.api.test_environments_api import error_of


def test_logs_are_the_owners_bounded_and_scrubbed(api: Api) -> None:
    env = api.create(
        secrets={"GITHUB_TOKEN": "ghp_planted_secret_0042"}, environment_variables={"GREETING": "hello"}
    )
    api.settled(env["id"])
    name = compute_name(env["id"])
    password = api.call("GET", f"/environments/{env['id']}/connection").json()["password"]
    compute = wiring.compute()
    compute.write_output(name, LogSource.IDE, "cloning with ghp_planted_secret_0042 ...")
    compute.write_output(name, LogSource.IDE, f"login password is {password}; greeting is hello")
    for n in range(300):
        compute.write_output(name, LogSource.IDE, f"line {n}")

    answer = api.call("GET", f"/environments/{env['id']}/logs", params={"tail": 1000})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["container"], body["tail"]) == ("ide", 1000)
    assert "ghp_planted_secret_0042" not in answer.text and password not in answer.text
    assert "cloning with [redacted] ..." in body["logs"] and "greeting is hello" in body["logs"]
    short = api.call("GET", f"/environments/{env['id']}/logs").json()  # 200 lines by default
    assert short["logs"].splitlines() == [f"line {n}" for n in range(100, 300)]
    assert (
        api.call("GET", f"/environments/{env['id']}/logs", params={"container": "tls"})
        .json()["logs"]
        .startswith("[simulated]")
    )

    error_of(api.call("GET", f"/environments/{env['id']}/logs", "mallory"), 404, "NOT_FOUND")
    for params in ({"tail": "0"}, {"tail": "1001"}, {"tail": "x"}, {"container": "db"}):
        error_of(api.call("GET", f"/environments/{env['id']}/logs", params=params), 400, "VALIDATION_ERROR")
