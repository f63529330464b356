"""Provisioning progress through the API: while an environment is CREATING or STARTING its
`progress` names the phases reached so far (from the simulated backend, which reports them as
ACI's events do); once RUNNING every phase has ended, and the audit trail keeps the timings."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import pytest

from tests.api.conftest import Api

SEEN_WHILE_CREATING = ["workspace", "compute_requested", "image_pulling", "container_started"]


@pytest.fixture
def slow_boot(app_env: pytest.MonkeyPatch) -> None:
    app_env.setenv("DEV8_SIMULATED_BOOT_POLLS", "3")  # pulling at first, then booting (3 s a poll)


def phases_until_settled(api: Api, env_id: str) -> tuple[list[list[str]], dict[str, Any]]:
    seen: list[list[str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        env = api.call("GET", f"/environments/{env_id}").json()["environment"]
        phases = [step["phase"] for step in env["progress"]]
        if not seen or seen[-1] != phases:
            seen.append(phases)
        if env["status"] not in ("CREATING", "STARTING"):
            return seen, env
        time.sleep(0.02)
    raise AssertionError(f"still transitional: {seen}")


def test_a_create_shows_its_phases_as_they_are_reached(slow_boot: None, app_env: pytest.MonkeyPatch) -> None:
    from devhost.dev8 import local_host
    from devhost.host.server import serve_in_thread
    from shared import wiring

    wiring.reset()
    import httpx

    import function_app

    host = local_host(function_app.create_app(), port=0)
    with serve_in_thread(host), httpx.Client(base_url=host.url, timeout=60) as client:
        api = Api(client, host)
        created = api.create()
        assert created["progress"] == []
        seen, env = phases_until_settled(api, created["id"])
        assert env["status"] == "RUNNING"
        # Every view is a prefix of the next: phases are only ever added, in order.
        for earlier, later in itertools.pairwise(seen):
            assert later[: len(earlier)] == earlier
        assert any(view[-1:] == ["image_pulling"] for view in seen), seen  # seen while it was current
        assert [step["phase"] for step in env["progress"]] == [*SEEN_WHILE_CREATING, "ide_answering"]
        assert all(step["ended_at"] is not None for step in env["progress"])
        starts = [step["started_at"] for step in env["progress"]]
        assert starts == sorted(starts)
        assert [step["ended_at"] for step in env["progress"][:-1]] == starts[1:]

        events = api.call("GET", f"/environments/{env['id']}/events").json()["events"]
        assert re.fullmatch(
            r"running \(workspace \d+\.\d s, compute requested \d+\.\d s, image pulling \d+\.\d s, "
            r"container started \d+\.\d s, IDE answering \d+\.\d s\)",
            events[0]["reason"],
        ), events[0]
        assert env["status_reason"] == "running"  # the timings are for the trail, not the status

        # A stop keeps the last start's phases; the next start begins afresh, with no workspace phase.
        assert api.call("POST", f"/environments/{env['id']}/stop").status_code == 202
        stopped = api.settled(env["id"])
        assert [step["phase"] for step in stopped["progress"]][-1] == "ide_answering"
        started = api.call("POST", f"/environments/{env['id']}/start").json()["environment"]
        assert started["progress"] == []
        seen, env = phases_until_settled(api, env["id"])
        assert next(step["phase"] for step in env["progress"]) == "compute_requested"
