"""End to end as a user: the real local host (`python -m devhost`) over HTTP, real Azurite, a real
code-server per environment, and the IDE in headless Chromium.

One environment goes through its whole life (create, edit a file in the IDE, stop, start, see the
file again in the IDE, delete) beside a second one of the same user that must stay untouched; a
second user must not be able to see, open or stop the first user's environments.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import harness
from tests.e2e.harness import Api, Browser, DevHost, group_members, port_open, wait_until

pytestmark = pytest.mark.e2e


def compute_state(host: DevHost, environment_id: str) -> dict[str, Any]:
    """The local backend's state file: pid, process group and port, never a secret."""
    return dict(json.loads((host.compute_dir(environment_id) / "state.json").read_text()))


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def open_ide(browser: Browser, api: Api, host: DevHost, environment_id: str) -> Any:
    """Log in to the environment's IDE with the password from /connection; the page once the
    workbench shows the environment's workspace folder."""
    connection = api.connection(environment_id)
    assert connection["vs_code_url"].startswith("http://127.0.0.1:"), connection["vs_code_url"]
    page = browser.new_page()
    harness.log_in(page, connection["vs_code_url"], connection["password"])
    harness.wait_for_workbench(page, host.working_tree(environment_id).name)
    return page


@pytest.fixture(scope="module")
def other_env(alice: Api, devhost: DevHost) -> Iterator[dict[str, Any]]:
    """A second RUNNING environment of the same user, which nothing here may touch."""
    env = alice.create("e2e-bystander", size="small")
    alice.wait_for(env["id"], "RUNNING")
    (devhost.working_tree(env["id"]) / "keep.txt").write_text("bystander\n")
    yield env


def test_the_login_page_refuses_a_wrong_password(
    alice: Api, devhost: DevHost, browser: Browser, other_env: dict[str, Any]
) -> None:
    connection = alice.connection(other_env["id"])
    page = browser.new_page()
    harness.log_in(page, connection["vs_code_url"], connection["password"] + "-wrong")
    page.locator(".error").filter(has_text="password").first.wait_for(state="visible")
    assert "/login" in page.url
    assert page.locator(".monaco-workbench").count() == 0


def test_create_edit_stop_start_delete_through_the_ide(
    alice: Api, devhost: DevHost, browser: Browser, other_env: dict[str, Any]
) -> None:
    # create -> RUNNING, with a URL of this machine and a password
    env = alice.create("e2e-main", size="small")
    env_id = env["id"]
    assert env["status"] == "CREATING"
    running = alice.wait_for(env_id, "RUNNING")
    assert running["cloud_provider"] == "LOCAL"
    workspace = devhost.working_tree(env_id)
    assert workspace.is_dir() and devhost.workspace_dir(env_id).is_dir()

    # log in, and create a file with content through the IDE
    page = open_ide(browser, alice, devhost, env_id)
    name, content = "notes-e2e.txt", f"written in the browser {uuid.uuid4().hex}"
    harness.create_file(page, name, content)
    on_disk = workspace / name
    if not wait_until(lambda: on_disk.is_file() and on_disk.read_text() == content, 30):
        harness.save(page)  # a Ctrl+S sent before the editor had settled can be lost
    assert wait_until(lambda: on_disk.is_file() and on_disk.read_text() == content, 60), (
        f"the IDE did not save {name}: {on_disk.read_text() if on_disk.exists() else 'no file'}"
    )
    browser.screenshot(page, "workbench-with-new-file")
    browser.close_pages()

    # stop -> STOPPED: the whole process group is gone and the port is closed
    before = compute_state(devhost, env_id)
    pgid, port = before["pgid"], before["port"]
    assert group_members(pgid), "the running environment's process group should have members"
    assert port_open(port)
    assert alice.command(env_id, "stop").status_code == 202
    alice.wait_for(env_id, "STOPPED")
    assert group_members(pgid) == [], f"processes of group {pgid} survived the stop"
    assert not port_open(port), f"port {port} still answers after the stop"
    assert alice.request("GET", f"/environments/{env_id}/connection").status_code == 409

    # start -> RUNNING, and the file with its content is still there, seen in the IDE
    assert alice.command(env_id, "start").status_code == 202
    alice.wait_for(env_id, "RUNNING")
    assert compute_state(devhost, env_id)["pgid"] != pgid, "a start must run a new code-server"
    page = open_ide(browser, alice, devhost, env_id)
    assert harness.open_file(page, name) == content
    browser.screenshot(page, "workbench-after-restart")
    browser.close_pages()

    # delete -> 404, its workspace and processes gone, the other environment untouched
    last = compute_state(devhost, env_id)
    assert alice.command(env_id, "delete").status_code == 202
    alice.wait_gone(env_id)
    assert alice.request("GET", f"/environments/{env_id}/connection").status_code == 404
    assert not workspace.exists(), f"{workspace} is left after the delete"
    assert not devhost.workspace_dir(env_id).exists(), "the workspace's snapshots are left after the delete"
    assert not devhost.compute_dir(env_id).exists()
    assert group_members(last["pgid"]) == []
    assert not port_open(last["port"])
    assert [e["id"] for e in alice.list()] == [other_env["id"]]
    assert alice.wait_for(other_env["id"], "RUNNING")
    assert (devhost.working_tree(other_env["id"]) / "keep.txt").read_text() == "bystander\n"
    assert healthy(compute_state(devhost, other_env["id"])["port"])


def test_another_user_cannot_see_open_or_stop_it(
    alice: Api, bob: Api, devhost: DevHost, other_env: dict[str, Any]
) -> None:
    env_id = other_env["id"]
    assert bob.list() == []
    for method, path in [
        ("GET", f"/environments/{env_id}"),
        ("GET", f"/environments/{env_id}/connection"),
        ("GET", f"/environments/{env_id}/events"),
        ("POST", f"/environments/{env_id}/stop"),
        ("POST", f"/environments/{env_id}/start"),
        ("PATCH", f"/environments/{env_id}"),
        ("DELETE", f"/environments/{env_id}"),
    ]:
        kwargs: dict[str, Any] = {"json": {"name": "taken"}} if method == "PATCH" else {}
        answer = bob.request(method, path, **kwargs)
        assert answer.status_code == 404, f"{method} {path} as another user: {answer.status_code}"
        assert "password" not in answer.text
    # Still the owner's, still running, its name unchanged, its IDE still up.
    env = alice.wait_for(env_id, "RUNNING")
    assert env["name"] == "e2e-bystander"
    assert healthy(compute_state(devhost, env_id)["port"])
    assert Path(devhost.workspace_dir(env_id)).is_dir()


def test_a_dev_server_is_reached_through_its_preview_url_after_login_only(
    alice: Api, devhost: DevHost, browser: Browser
) -> None:
    """A port of the environment is a preview URL through code-server's own proxy: the IDE's login
    guards it (never anonymous), and nothing is published on a port of its own."""
    port = harness.free_port()
    env = alice.create("e2e-preview", size="small", ports=[port])
    running = alice.wait_for(env["id"], "RUNNING")
    origin = running["vs_code_url"].split("/?", 1)[0].rstrip("/")
    url = f"{origin}/proxy/{port}/"
    assert running["forwarded_ports"] == [{"port": port, "url": url}]

    # A dev server started in the workspace (as from the IDE's terminal), on loopback only.
    workspace = devhost.working_tree(env["id"])
    marker = f"preview {uuid.uuid4().hex}"
    (workspace / "index.html").write_text(f"<html><body><h1>{marker}</h1></body></html>\n")
    server = harness.start_dev_server(workspace, port)
    try:
        assert wait_until(lambda: port_open(port), 30), "the dev server did not listen"

        # Without the IDE's login: refused, whether by a script or a browser.
        anonymous = httpx.get(url, timeout=10, trust_env=False, follow_redirects=False)
        assert anonymous.status_code in (302, 401), anonymous.status_code
        assert marker not in anonymous.text
        page = browser.new_page()
        page.goto(url)
        assert "/login" in page.url and marker not in page.content()
        browser.close_pages()

        # After logging in to the IDE, the same browser reaches the dev server.
        page = open_ide(browser, alice, devhost, env["id"])
        page.goto(url)
        page.get_by_text(marker).wait_for(state="visible")
        browser.screenshot(page, "preview-url")
        browser.close_pages()
    finally:
        harness.stop_process(server, grace=10)
    assert alice.command(env["id"], "delete").status_code == 202
    alice.wait_gone(env["id"])
