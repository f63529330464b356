"""The HTTP API end to end: the real function app served by the local host, Azurite tables, the
Durable engine running the real orchestrations on the simulated compute backend."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from devhost.host.durable.engine import InstanceExistsError
from shared import wiring
from shared.domain.environment import Actor
from shared.domain.variables import SESSION_VARIABLES
from shared.services.ports import Change
from tests.api.conftest import Api, token

ENV_ID = "env-0123456789abcdef"
PROTECTED = [
    ("GET", "/templates"),
    ("POST", "/environments"),
    ("GET", "/environments"),
    ("GET", f"/environments/{ENV_ID}"),
    ("PATCH", f"/environments/{ENV_ID}"),
    ("DELETE", f"/environments/{ENV_ID}"),
    ("POST", f"/environments/{ENV_ID}/start"),
    ("POST", f"/environments/{ENV_ID}/stop"),
    ("POST", f"/environments/{ENV_ID}/activity"),
    ("GET", f"/environments/{ENV_ID}/connection"),
    ("GET", f"/environments/{ENV_ID}/events"),
    ("GET", f"/environments/{ENV_ID}/metrics"),
]
DOCUMENTED_FIELDS = {
    "id",
    "name",
    "status",
    "status_reason",
    "template",
    "size",
    "cpu_cores",
    "memory_gb",
    "storage_gb",
    "cloud_provider",
    "cloud_region",
    "vs_code_url",
    "ssh_connection_string",
    "ports",
    "forwarded_ports",
    "idle_timeout_minutes",
    "last_accessed_at",
    "created_at",
    "updated_at",
    "stopped_at",
    "estimated_cost_per_hour",
}


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "details", "code"} and body["code"] == code and body["error"]
    return body


def test_anonymous_probes(api: Api):
    assert api.call("GET", "/health", None).json() == {"status": "healthy"}
    assert api.call("GET", "/live", None).json() == {"status": "alive"}
    ready = api.call("GET", "/ready", None)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_ready_asks_table_storage_at_most_once_per_interval(api: Api):
    """Anyone may ask, so a flood of /ready was a flood of table requests."""
    before = wiring.store().stats.snapshot()["queries"]
    answers = {api.call("GET", "/ready", None).status_code for _ in range(30)}
    assert (
        answers == {200} and wiring.store().stats.snapshot()["queries"] - before <= 2
    )  # an interval may end


def test_ready_is_503_when_table_storage_is_unreachable(api: Api, app_env):
    app_env.setenv(
        "DEV8_TABLES_CONNECTION",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    )
    wiring.reset()
    response = api.call("GET", "/ready", None)
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_protected_route_needs_a_token(api: Api, method, path):
    response = api.call(method, path, None, json={})
    error_of(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = api.call(method, path, None, headers={"Authorization": "Bearer not-a-jwt"}, json={})
    error_of(bad, 401, "UNAUTHORIZED")


def test_catalog(api: Api):
    body = api.call("GET", "/templates").json()
    assert [t["name"] for t in body["templates"]][:4] == ["node", "python", "go", "fullstack"]
    node = body["templates"][0]
    assert node == {  # the catalog file's entry, as the product documents' Template model has it
        "name": "node",
        "display_name": "Node.js",
        "description": "Node.js LTS with npm, pnpm, yarn and TypeScript.",
        "image": "dev8-node",
        "default_size": "medium",
        "default_cpu_cores": 2,
        "default_memory_gb": 4,
        "default_storage_gb": 50,
        "ports": [3000, 5173],
        "extensions": ["dbaeumer.vscode-eslint", "esbenp.prettier-vscode"],
        "environment_variables": {},
        "category": "language",
        "tags": ["javascript", "typescript", "web"],
        "icon": "nodejs",
        "popular": True,
        "aliases": ["nodejs"],
    }
    assert [s["name"] for s in body["sizes"]] == ["small", "medium", "large", "xlarge"]
    assert body["sizes"][1] | {"estimated_cost_per_hour": 0} == {
        "name": "medium",
        "cpu_cores": 2,
        "memory_gb": 4,
        "storage_gb": 50,
        "estimated_cost_per_hour": 0,
    }


def test_create_answers_201_with_location_and_the_documented_fields(api: Api):
    response = api.call(
        "POST",
        "/environments",
        json={"name": "web", "base_image": "nodejs", "size": "large", "secrets": {"GITHUB_TOKEN": "ghp_x1"}},
    )
    assert response.status_code == 201
    env = response.json()["environment"]
    assert response.headers["Location"] == f"/api/v1/environments/{env['id']}"
    assert re.fullmatch(r"env-[0-9a-f]{16}", env["id"])
    assert set(env) >= DOCUMENTED_FIELDS
    assert (env["template"], env["size"], env["cpu_cores"], env["memory_gb"]) == ("node", "large", 4, 8)
    assert env["cloud_provider"] == "LOCAL" and env["status"] == "CREATING"
    assert "ghp_x1" not in response.text and "secret" not in response.text.lower()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "template": "node", "user_id": "mallory"}, "user_id"),
        ({"name": "x", "template": "node", "status": "RUNNING", "owner": "m"}, "owner"),
        ({"name": "", "template": "node"}, "name"),
        ({"name": "x", "template": "ruby"}, "template"),
        ({"name": "x", "template": "node", "size": "huge"}, "size"),
        ({"name": "x", "template": "node", "cpu_cores": 64}, "cpu_cores"),
        ({"name": "x", "template": "node", "idle_timeout_minutes": 1}, "idle_timeout_minutes"),
        ({"name": "x", "template": "node", "repository_url": "http://github.com/a/b"}, "repository_url"),
        ({"name": "x", "template": "node", "dotfiles_url": "http://github.com/a/dots"}, "dotfiles_url"),
        ({"name": "x", "template": "node", "dotfiles_url": "https://u:p@github.com/a/dots"}, "dotfiles_url"),
        (
            {"name": "x", "template": "node", "environment_variables": {"DEV8_X": "1"}},
            "environment_variables",
        ),
        ({"name": "x", "template": "node", "ports": [8080]}, "ports"),
    ],
)
def test_bad_create_bodies_are_refused_and_change_nothing(api: Api, body, field):
    response = api.call("POST", "/environments", json=body)
    details = error_of(response, 400, "VALIDATION_ERROR")["details"]
    assert any(d["field"].startswith(field) for d in details), details
    assert api.call("GET", "/environments").json() == {"environments": []}


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"'])
def test_non_object_bodies_are_refused(api: Api, raw):
    response = api.call("POST", "/environments", content=raw, headers={"Content-Type": "application/json"})
    error_of(response, 400, "VALIDATION_ERROR")


def test_lifecycle_over_http(api: Api):
    env = api.create()
    assert api.settled(env["id"])["status"] == "RUNNING"

    again = api.call("POST", f"/environments/{env['id']}/start")
    assert again.status_code == 200 and again.json()["environment"]["status"] == "RUNNING"

    stopping = api.call("POST", f"/environments/{env['id']}/stop")
    assert stopping.status_code == 202 and stopping.json()["environment"]["status"] == "STOPPING"
    stopped = api.settled(env["id"])
    assert stopped["status"] == "STOPPED" and stopped["stopped_at"]
    assert stopped["vs_code_url"] is None and stopped["ssh_connection_string"] is None
    assert api.call("POST", f"/environments/{env['id']}/stop").status_code == 200
    error_of(api.call("GET", f"/environments/{env['id']}/connection"), 409, "INVALID_STATE")

    assert api.call("POST", f"/environments/{env['id']}/start").status_code == 202
    assert api.settled(env["id"])["status"] == "RUNNING"

    deleting = api.call("DELETE", f"/environments/{env['id']}")
    assert deleting.status_code == 202 and deleting.json()["environment"]["status"] == "DELETING"
    assert api.settled(env["id"])["status"] is None
    error_of(api.call("GET", f"/environments/{env['id']}"), 404, "NOT_FOUND")
    error_of(api.call("DELETE", f"/environments/{env['id']}"), 404, "NOT_FOUND")
    assert api.call("GET", "/environments").json()["environments"] == []


def test_events_are_the_audit_trail_newest_first(api: Api):
    env = api.create()
    api.settled(env["id"])
    api.call("POST", f"/environments/{env['id']}/stop")
    api.settled(env["id"])
    events = api.call("GET", f"/environments/{env['id']}/events").json()["events"]
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        ("STOPPING", "STOPPED"),
        ("STOPPING", "STOPPING"),  # the stop hand-off's outcome (issue 11)
        ("RUNNING", "STOPPING"),
        ("CREATING", "RUNNING"),
        (None, "CREATING"),
    ]
    # No snapshot was ever taken of this workspace: nothing to save, not "since the last one".
    assert (
        events[1]["reason"]
        == "final snapshot: nothing to save yet (the working tree is as the workspace started)"
    )
    assert [e["actor"] for e in events] == ["system", "system", "user", "system", "user"]
    assert all(e["at"] and e["reason"] for e in events)


def test_a_command_on_a_busy_environment_is_409(api: Api, app_env):
    app_env.setenv("DEV8_SIMULATED_LATENCY_MS", "400")  # compute calls now take a while
    wiring.reset()
    env = api.create()
    for method, path in (("POST", "/start"), ("POST", "/stop"), ("DELETE", "")):
        error_of(api.call(method, f"/environments/{env['id']}{path}"), 409, "INVALID_STATE")
    assert api.settled(env["id"])["status"] == "RUNNING"


def test_connection_is_the_only_place_the_password_appears(api: Api):
    env = api.create()
    api.settled(env["id"])
    connection = api.call("GET", f"/environments/{env['id']}/connection")
    assert connection.status_code == 200
    body = connection.json()
    assert set(body) == {"vs_code_url", "password", "ssh_connection_string"}
    assert len(body["password"]) >= 24 and body["vs_code_url"].startswith("https://")
    assert connection.headers["Cache-Control"] == "no-store"
    for path in ("", "/events"):
        assert body["password"] not in api.call("GET", f"/environments/{env['id']}{path}").text
    assert body["password"] not in api.call("GET", "/environments").text


def test_patch(api: Api):
    env = api.create()
    response = api.call(
        "PATCH", f"/environments/{env['id']}", json={"name": "renamed", "idle_timeout_minutes": 45}
    )
    assert response.status_code == 200
    assert {k: response.json()["environment"][k] for k in ("name", "idle_timeout_minutes")} == {
        "name": "renamed",
        "idle_timeout_minutes": 45,
    }
    error_of(
        api.call("PATCH", f"/environments/{env['id']}", json={"status": "STOPPED"}), 400, "VALIDATION_ERROR"
    )
    error_of(
        api.call("PATCH", f"/environments/{env['id']}", json={"idle_timeout_minutes": 500}),
        400,
        "VALIDATION_ERROR",
    )
    assert api.call("GET", f"/environments/{env['id']}").json()["environment"]["name"] == "renamed"


def test_status_filter(api: Api):
    first = api.create(name="one")
    api.settled(first["id"])
    second = api.create(name="two")
    api.settled(second["id"])
    api.call("POST", f"/environments/{second['id']}/stop")
    api.settled(second["id"])
    running = api.call("GET", "/environments?status=running").json()["environments"]
    assert [e["id"] for e in running] == [first["id"]]
    assert len(api.call("GET", "/environments").json()["environments"]) == 2
    error_of(api.call("GET", "/environments?status=DELETED"), 400, "VALIDATION_ERROR")
    error_of(api.call("GET", "/environments?status=bogus"), 400, "VALIDATION_ERROR")


def test_activity_route(api: Api):
    env = api.create()
    assert api.call("POST", f"/environments/{env['id']}/activity").json() == {"status": "ok"}


def test_another_owner_gets_404_on_every_route(api: Api):
    env = api.create("alice")
    api.settled(env["id"])
    for method, path in PROTECTED[3:]:
        response = api.call(method, path.replace(ENV_ID, env["id"]), "mallory", json={"name": "stolen"})
        error_of(response, 404, "NOT_FOUND")
    assert api.call("GET", "/environments", "mallory").json() == {"environments": []}
    # Nothing changed for the owner.
    mine = api.call("GET", f"/environments/{env['id']}", "alice").json()["environment"]
    assert (mine["name"], mine["status"]) == ("dev", "RUNNING")


def test_malformed_ids_are_404(api: Api):
    for env_id in ("nope", "env-XYZ", "env-0123456789abcdef0", "..%2F..%2Fetc"):
        error_of(api.call("GET", f"/environments/{env_id}"), 404, "NOT_FOUND")


def test_an_id_with_a_line_break_after_it_is_404_and_changes_nothing(api: Api):
    env = api.create()
    api.settled(env["id"])
    for suffix in ("%0A", "%0D%0A", "%0A/"):
        error_of(api.call("GET", f"/environments/{env['id']}{suffix}"), 404, "NOT_FOUND")
        error_of(api.call("POST", f"/environments/{env['id']}{suffix}/stop"), 404, "NOT_FOUND")
    assert api.call("GET", f"/environments/{env['id']}").json()["environment"]["status"] == "RUNNING"


def test_idempotency_key_under_20_concurrent_requests(api: Api):
    def post(_: int):
        return api.call(
            "POST",
            "/environments",
            json={"name": "same", "template": "go"},
            headers={"Idempotency-Key": "k-1"},
        )

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(post, range(20)))
    assert {r.status_code for r in responses} == {201}
    ids = {r.json()["environment"]["id"] for r in responses}
    assert len(ids) == 1
    env_id = ids.pop()
    api.settled(env_id)
    instances = api.host.engine.list_instances(instance_id_prefix=env_id)
    assert len(instances) == 1  # one provisioning orchestration, not twenty
    assert len(api.call("GET", "/environments").json()["environments"]) == 1

    other = api.call(
        "POST",
        "/environments",
        json={"name": "different", "template": "go"},
        headers={"Idempotency-Key": "k-1"},
    )
    error_of(other, 409, "CONFLICT")
    error_of(
        api.call(
            "POST",
            "/environments",
            json={"name": "x", "template": "go"},
            headers={"Idempotency-Key": "x" * 200},
        ),
        400,
        "VALIDATION_ERROR",
    )


def test_quotas_hold_under_concurrent_creates_and_starts(api: Api, app_env):
    app_env.setenv("DEV8_MAX_ENVIRONMENTS_PER_USER", "6")
    app_env.setenv("DEV8_MAX_RUNNING_PER_USER", "2")
    wiring.reset()

    def create(i: int):
        return api.call("POST", "/environments", "quinn", json={"name": f"e{i}", "template": "python"})

    with ThreadPoolExecutor(24) as pool:
        responses = list(pool.map(create, range(24)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 2  # the running limit binds first: a new environment starts running
    assert (
        all(r.json()["code"] == "QUOTA_EXCEEDED" for r in responses if r.status_code == 403)
        and codes.count(403) == 22
    )

    created = [r.json()["environment"]["id"] for r in responses if r.status_code == 201]
    for env_id in created:
        api.settled(env_id, "quinn")
        api.call("POST", f"/environments/{env_id}/stop", "quinn")
        api.settled(env_id, "quinn")
    for i in range(4):  # fill up to 6 environments, stopping each
        env = api.create("quinn", name=f"more{i}")
        api.settled(env["id"], "quinn")
        api.call("POST", f"/environments/{env['id']}/stop", "quinn")
        api.settled(env["id"], "quinn")
    error_of(create(99), 403, "QUOTA_EXCEEDED")

    ids = [e["id"] for e in api.call("GET", "/environments", "quinn").json()["environments"]]
    assert len(ids) == 6
    with ThreadPoolExecutor(6) as pool:
        starts = list(
            pool.map(lambda env_id: api.call("POST", f"/environments/{env_id}/start", "quinn"), ids)
        )
    assert sorted(r.status_code for r in starts) == [202, 202, 403, 403, 403, 403]


def test_tokens_of_other_issuers_do_not_work(api: Api):
    headers = {"Authorization": f"Bearer {token('alice', issuer='someone-else')}"}
    error_of(api.call("GET", "/environments", None, headers=headers), 401, "UNAUTHORIZED")


def test_repository_dotfiles_and_identity_reach_the_workspace(api: Api):
    body = {
        "repository_url": "https://github.com/alice/app.git",
        "dotfiles_url": "https://github.com/alice/dotfiles",
        "environment_variables": {"GIT_USER_NAME": "Alice", "GIT_USER_EMAIL": "alice@example.com"},
    }
    env = api.create(**body)
    assert (env["repository_url"], env["dotfiles_url"]) == (body["repository_url"], body["dotfiles_url"])
    api.settled(env["id"])
    variables = wiring.compute().spec_of(f"dev8-{env['id'].removeprefix('env-')}").environment_variables
    assert variables["REPOSITORY_URL"] == body["repository_url"]
    assert variables["DOTFILES_URL"] == body["dotfiles_url"]
    assert (variables["GIT_USER_NAME"], variables["GIT_USER_EMAIL"]) == ("Alice", "alice@example.com")
    # The user's own variables are named for SSH sessions (sshd starts them afresh); no platform one.
    assert set(variables[SESSION_VARIABLES].split()) == set(body["environment_variables"])


def test_the_agent_token_reports_activity_for_its_own_environment_only(api: Api):
    first = api.create()
    second = api.create(name="other")
    api.settled(first["id"])
    api.settled(second["id"])
    spec = wiring.compute().spec_of(f"dev8-{first['id'].removeprefix('env-')}")
    agent = spec.secure_environment["DEV8_AGENT_TOKEN"]
    assert spec.environment_variables["DEV8_ACTIVITY_URL"].endswith(
        f"/api/v1/environments/{first['id']}/activity"
    )
    assert agent not in api.call("GET", f"/environments/{first['id']}").text

    ok = api.call(
        "POST", f"/environments/{first['id']}/activity", None, headers={"Authorization": f"Bearer {agent}"}
    )
    assert ok.status_code == 200 and ok.json() == {"status": "ok"}
    as_agent = {"Authorization": f"Bearer {agent}"}
    error_of(
        api.call("POST", f"/environments/{second['id']}/activity", None, headers=as_agent),
        401,
        "UNAUTHORIZED",
    )
    error_of(api.call("GET", f"/environments/{first['id']}", None, headers=as_agent), 401, "UNAUTHORIZED")
    error_of(
        api.call("POST", f"/environments/{first['id']}/stop", None, headers=as_agent), 401, "UNAUTHORIZED"
    )
    tampered = {"Authorization": f"Bearer {agent[:-4]}AAAA"}
    error_of(
        api.call("POST", f"/environments/{first['id']}/activity", None, headers=tampered), 401, "UNAUTHORIZED"
    )


def test_retired_environment_routes(api: Api):
    assert api.call("GET", "/retired-environments").json() == {"retired_environments": []}
    error_of(api.call("POST", f"/retired-environments/{ENV_ID}/restore"), 404, "NOT_FOUND")
    error_of(api.call("GET", "/retired-environments", None), 401, "UNAUTHORIZED")


def _refuse_starts(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Durable backend refuses every new orchestration (as a task hub does an instance id it
    already holds: 409)."""

    def refuse(name: str, serialized: str | None, instance_id: str | None) -> str:
        raise InstanceExistsError(f"an instance with ID '{instance_id}' already exists")

    monkeypatch.setattr(api.host.engine, "start_serialized", refuse)


LAUNCH_FAILED = "could not start the operation; try again"


def test_a_command_whose_orchestration_cannot_start_is_503_and_settles_as_error(
    api: Api, monkeypatch: pytest.MonkeyPatch
):
    env = api.settled(api.create()["id"])
    assert env["status"] == "RUNNING"
    _refuse_starts(api, monkeypatch)
    stop = api.call("POST", f"/environments/{env['id']}/stop")
    assert stop.status_code == 503 and stop.json()["code"] == "UNAVAILABLE"
    create = api.call("POST", "/environments", json={"name": "second", "template": "node"})
    assert create.status_code == 503
    listed = {e["name"]: e for e in api.call("GET", "/environments").json()["environments"]}
    assert {name: (e["status"], e["status_reason"]) for name, e in listed.items()} == {
        "dev": ("ERROR", LAUNCH_FAILED),
        "second": ("ERROR", LAUNCH_FAILED),
    }
    monkeypatch.undo()  # the backend is back: the user's retry goes through
    retry = api.call("POST", f"/environments/{env['id']}/start")
    assert retry.status_code == 202
    assert api.settled(env["id"])["status"] == "RUNNING"


def test_a_sweep_whose_orchestration_cannot_start_settles_the_record_the_same_way(
    api: Api, monkeypatch: pytest.MonkeyPatch
):
    """The one policy holds for the timers too: the idle sweep's stop cannot start, so the record
    settles as ERROR at once instead of waiting as STOPPING for the reconciler."""
    env = api.settled(api.create()["id"])
    store = wiring.store()
    record = store.get("alice", env["id"])
    idle_since = record.last_accessed_at - timedelta(hours=2)
    store.save(
        record,
        record.model_copy(update={"last_accessed_at": idle_since}),
        Change(Actor.USER, "t", idle_since),
    )
    _refuse_starts(api, monkeypatch)
    assert api.host.loop is not None
    asyncio.run_coroutine_threadsafe(api.host.timers.fire("idle_sweep"), api.host.loop).result(30)
    after = api.call("GET", f"/environments/{env['id']}").json()["environment"]
    assert (after["status"], after["status_reason"]) == ("ERROR", LAUNCH_FAILED)
    trail = api.call("GET", f"/environments/{env['id']}/events").json()["events"]
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in trail[:2]] == [
        ("STOPPING", "ERROR", "system"),
        ("RUNNING", "STOPPING", "idle-sweep"),
    ]
