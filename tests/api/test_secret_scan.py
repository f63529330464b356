"""No secret leaks: after a full lifecycle, the password and the user's secrets appear in no
API response but /connection, no table row, no log line and no orchestration history."""

from __future__ import annotations

import logging

from azure.data.tables import TableServiceClient

from shared import wiring
from shared.domain.resources import compute_name
from shared.settings import get_settings
from tests.api.conftest import Api

GITHUB_TOKEN = "ghp_SCANME0123456789abcdefghijklmnopqrstu"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIScanMeKey dev@laptop"


def test_no_secret_outside_connection(api: Api, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def call(method: str, path: str, **kwargs):
        response = api.call(method, path, **kwargs)
        seen.append(response.text)
        return response

    env = call(
        "POST",
        "/environments",
        json={
            "name": "scan",
            "template": "python",
            "secrets": {"GITHUB_TOKEN": GITHUB_TOKEN, "SSH_PUBLIC_KEY": SSH_KEY},
        },
    ).json()["environment"]
    api.settled(env["id"])
    password = api.call("GET", f"/environments/{env['id']}/connection").json()["password"]
    agent_token = wiring.compute().spec_of(compute_name(env["id"])).secure_environment["DEV8_AGENT_TOKEN"]
    for method, path in [
        ("GET", f"/environments/{env['id']}"),
        ("GET", "/environments"),
        ("GET", f"/environments/{env['id']}/events"),
        ("PATCH", f"/environments/{env['id']}"),
        ("POST", f"/environments/{env['id']}/stop"),
    ]:
        call(method, path, json={"name": "scanned"} if method == "PATCH" else None)
    api.settled(env["id"])
    call("POST", f"/environments/{env['id']}/start")
    api.settled(env["id"])
    call("DELETE", f"/environments/{env['id']}")
    api.settled(env["id"])

    secrets = {
        "password": password,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "SSH_PUBLIC_KEY": SSH_KEY,
        "agent token": agent_token,
    }

    # Every table row this app wrote, every column.
    settings = get_settings()
    service = TableServiceClient.from_connection_string(settings.tables_connection.get_secret_value())
    rows = []
    for table in service.list_tables():
        if table.name.startswith(settings.table_prefix):
            rows += [str(dict(entity)) for entity in service.get_table_client(table.name).list_entities()]
    assert len(rows) >= 5  # the record, its audit trail and its index rows were really read

    histories = [
        str(status.history) + str(status.input) + str(status.output)
        for status in api.host.engine.list_instances(instance_id_prefix=env["id"])
    ]
    assert len(histories) == 4  # provision, stop, start, delete

    places = {"responses": seen, "table rows": rows, "logs": [caplog.text], "orchestrations": histories}
    for where, texts in places.items():
        for name, value in secrets.items():
            assert not any(value in text for text in texts), f"{name} leaked into {where}"
