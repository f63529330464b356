"""GET /me/export: everything held about the caller (deleted environments, whole audit trails,
usage), never a secret, and nothing of another user's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from shared import wiring
from shared.adapters.tables import rows
from shared.domain.resources import ComputeState, compute_name, workspace_name
from tests.api.conftest import Api


def test_the_export_holds_the_callers_records_trails_and_usage_and_no_secret(api: Api) -> None:
    kept = api.create(name="kept", secrets={"GITHUB_TOKEN": "ghp_export_must_not_show_this"})
    gone = api.create(name="gone")
    bobs = api.create(user="bob", name="bobs")
    for env in (kept, gone):
        api.settled(env["id"])
    api.settled(bobs["id"], user="bob")
    password = api.call("GET", f"/environments/{kept['id']}/connection").json()["password"]
    assert api.call("DELETE", f"/environments/{gone['id']}").status_code == 202
    api.settled(gone["id"])

    answer = api.call("GET", "/me/export")
    assert answer.status_code == 200, answer.text
    export = answer.json()
    assert export["owner"] == "alice"
    held = {env["id"]: env for env in export["environments"]}
    assert set(held) == {kept["id"], gone["id"]}  # bob's is not alice's
    assert held[gone["id"]]["status"] == "DELETED"  # kept for audit and billing, and hers to see
    trail = [event["to_status"] for event in held[gone["id"]]["events"]]
    assert trail[0] == "DELETED" and trail[-1] == "CREATING"  # the whole trail, newest first
    assert all(usage["storage_gb_hours"] > 0 for usage in held[kept["id"]]["usage"].values())
    text = answer.text
    for secret in ("ghp_export_must_not_show_this", password):
        assert secret not in text
    assert "sealed" not in text and "agent_token" not in text and "etag" not in json.dumps(export).lower()
    assert api.call("GET", "/me/export", None).status_code == 401


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit  # a bound on a broken run, not a timing assertion
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.1)


def rows_of(table: str, query: str) -> list[dict[str, Any]]:
    return list(wiring.store()._tables.service.get_table_client(table).query_entities(query))


def test_delete_me_erases_everything_of_the_caller_and_nothing_of_anyone_else(api: Api) -> None:
    keyed = {"name": "running", "template": "node"}
    answer = api.call("POST", "/environments", json=keyed, headers={"Idempotency-Key": "first-try"})
    running = answer.json()["environment"]
    stopped = api.create(name="stopped")
    gone = api.create(name="gone")
    bobs = api.create(user="bob", name="bobs")
    for env in (running, stopped, gone):
        api.settled(env["id"])
    api.settled(bobs["id"], user="bob")
    api.call("POST", f"/environments/{stopped['id']}/stop")
    api.call("DELETE", f"/environments/{gone['id']}")
    api.settled(stopped["id"])
    api.settled(gone["id"])
    mine = [running["id"], stopped["id"], gone["id"]]
    agent = wiring.compute().spec_of(compute_name(running["id"])).secure_environment["DEV8_AGENT_TOKEN"]
    sample = {"cpu_percent": 5.0, "memory_mb": 100.0}
    assert api.call(
        "POST", f"/environments/{running['id']}/activity", None,
        json={"sample": sample}, headers={"Authorization": f"Bearer {agent}"},
    ).status_code == 200  # fmt: skip

    def bobs_data() -> list[dict[str, Any]]:  # all of it but the usage, which grows as his runs
        held = api.call("GET", "/me/export", "bob").json()["environments"]
        return [{name: value for name, value in env.items() if name != "usage"} for env in held]

    bob_before = bobs_data()
    month = wiring.utcnow().strftime("%Y-%m")
    spent = api.call("GET", "/usage", params={"month": month}).json()["totals"]
    anonymous_before = wiring.store().erasure.anonymous_usage(month)

    late = api.create(name="late")  # still being created when the erasure begins: waited for
    mine.append(late["id"])
    first = api.call("DELETE", "/me")
    assert first.status_code == 202 and first.json() == {"status": "deleting"}
    again = api.call("DELETE", "/me")  # while it runs: the same answer, one erasure
    assert again.status_code == 202 and again.json() == {"status": "deleting"}
    wait_for(lambda: api.call("GET", "/me/export").json()["environments"] == [], "the erasure")

    assert api.call("GET", "/environments").json() == {"environments": []}
    assert api.call("GET", "/retired-environments").json() == {"retired_environments": []}
    store = wiring.store()
    # Not a row left: records, trails, idempotency keys, quota counters, index, directory, samples.
    partition = rows.owner_key("alice")
    assert rows_of(store.environments_table, f"PartitionKey eq '{partition}'") == []
    for env_id in mine:
        assert rows_of(store.index_table, f"RowKey eq '{env_id}'") == []
        assert rows_of(store.table_names[2], f"PartitionKey eq '{env_id}'") == []
        assert not wiring.workspaces().exists(workspace_name(env_id))
        assert wiring.compute().status(compute_name(env_id)).state is ComputeState.ABSENT
    # Only the anonymous totals stay: this month's use, with no owner and no environment named.
    kept = store.erasure.anonymous_usage(month)
    assert kept.compute_seconds - anonymous_before.compute_seconds >= spent["compute_seconds"]
    assert kept.cost > anonymous_before.cost
    archive = rows_of(store.environments_table, "PartitionKey eq '!anonymous-usage'")
    text = json.dumps(archive, default=str)
    assert "alice" not in text and not any(env_id in text for env_id in mine)

    # Bob's data is untouched; his environment still runs.
    assert bobs_data() == bob_before
    assert api.call("GET", f"/environments/{bobs['id']}", "bob").json()["environment"]["status"] == "RUNNING"
    # Asked again after it finished: the same answer, nothing to do; the key is free again.
    assert api.call("DELETE", "/me").status_code == 202
    again_created = api.call(
        "POST",
        "/environments",
        json={"name": "anew", "template": "node"},
        headers={"Idempotency-Key": "first-try"},
    )
    assert again_created.status_code == 201 and again_created.json()["environment"]["id"] not in mine
    assert api.call("DELETE", "/me", None).status_code == 401
