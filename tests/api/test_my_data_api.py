"""GET /me/export: everything held about the caller (deleted environments, whole audit trails,
usage), never a secret, and nothing of another user's."""

from __future__ import annotations

import json

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
