"""Resizing through the real app, its orchestrations and the simulated backend: a running
environment is refused without `restart`, restarted with it (stopped, started again at the new
size on new compute), a stopped one takes the size at its next start; storage only grows."""

from __future__ import annotations

import time
from typing import Any

from shared import wiring
from shared.domain.resources import compute_name
from tests.api.conftest import Api
from tests.api.test_environments_api import error_of


def until(api: Api, env_id: str, check: Any, limit: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit  # a bound on a broken run, not a timing assertion
    while True:
        env = api.call("GET", f"/environments/{env_id}").json()["environment"]
        if check(env):
            return env
        assert time.monotonic() < deadline, f"never came: {env['status']} {env['size']}"
        time.sleep(0.05)


def test_resizing_a_running_then_a_stopped_environment(api: Api) -> None:
    env = api.create(size="small")
    api.settled(env["id"])
    path = f"/environments/{env['id']}"
    refused = error_of(api.call("PATCH", path, json={"size": "large"}), 409, "INVALID_STATE")
    assert "restart: true" in refused["error"]
    error_of(api.call("PATCH", path, "bob", json={"size": "large", "restart": True}), 404, "NOT_FOUND")

    answer = api.call("PATCH", path, json={"size": "large", "restart": True})
    assert answer.status_code == 202, answer.text
    assert answer.json()["environment"]["status"] == "STOPPING"
    resized = until(api, env["id"], lambda e: e["status"] == "RUNNING" and e["size"] == "large")
    assert (resized["cpu_cores"], resized["memory_gb"], resized["storage_gb"]) == (4, 8, 100)
    spec = wiring.compute().spec_of(compute_name(env["id"]))
    assert (spec.cpu_cores, spec.memory_gb) == (4, 8)  # the compute runs the new size
    trail = [e["reason"] for e in api.call("GET", f"{path}/events").json()["events"]]
    assert "resize to large (4 CPU, 8 GB, 100 GB storage) as it restarts" in trail
    assert "restarting to resize" in trail

    assert api.call("POST", f"{path}/stop").status_code == 202
    until(api, env["id"], lambda e: e["status"] == "STOPPED")
    error_of(api.call("PATCH", path, json={"storage_gb": 50}), 400, "VALIDATION_ERROR")
    error_of(api.call("PATCH", path, json={"restart": True}), 400, "VALIDATION_ERROR")
    stopped = api.call("PATCH", path, json={"cpu_cores": 2.0})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["environment"]["size"] == "custom"
    assert stopped.json()["environment"]["status"] == "STOPPED"  # applies at the next start
    assert api.call("POST", f"{path}/start").status_code == 202
    until(api, env["id"], lambda e: e["status"] == "RUNNING")
    assert wiring.compute().spec_of(compute_name(env["id"])).cpu_cores == 2
