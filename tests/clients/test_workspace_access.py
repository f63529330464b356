"""A developer's first minutes in a workspace, on the live local host (real code-server, sshd and
git): a private repository cloned at the first boot with the GITHUB_TOKEN secret, from a git
server on loopback behind TLS (tests/git_server.py); `dev8 ssh` into it with the user's key; the
token in no file and on no command line; a clone that fails is the running environment's
status_reason and in its audit trail."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import WORKSPACE_USER
from tests.clients.test_cli import Cli
from tests.e2e.harness import Api, DevHost, pids_mentioning
from tests.git_server import GitServer, git_server, make_repository

TOKEN = "ghp_dev8WorkspaceAccessToken0123456789XYZ"
REASON_WAIT = 90.0  # a bound for the agent's report to land; not a timing assertion


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    root = tmp_path_factory.mktemp("git-server")
    make_repository(root, "app", {"README.md": "the team's app\n"})
    with git_server(root, TOKEN, private={"app"}) as running:
        yield running


@pytest.fixture(scope="module")
def api(live_host: DevHost) -> Iterator[Api]:
    client = live_host.api(WORKSPACE_USER)
    yield client
    client.close()


def keypair(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def files_holding(root: Path, secret: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_socket() and secret.encode() in path.read_bytes():
                found.append(path)
        except OSError:
            continue  # gone meanwhile (a log rotated, a lock dropped)
    return found


def test_a_private_repository_is_cloned_and_reached_over_ssh(
    live_host: DevHost, api: Api, server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Created with the command line: the secrets' values come from its environment, not its argv.
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("SSH_PUBLIC_KEY", keypair(tmp_path / "id_ed25519"))
    cli = Cli(live_host, tmp_path / "cli-home", live_host.mint(WORKSPACE_USER))
    made = cli(
        "create", "with-repository", "-t", "python", "--repo", server.url("app"),
        "--env", f"GIT_SSL_CAINFO={server.ca_file}", "--env", f"GIT_TOKEN_HOSTS={server.host}",
        "--secret", "GITHUB_TOKEN", "--secret", "SSH_PUBLIC_KEY", "--wait", "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    env = made.json()
    unset = cli("create", "nope", "--secret", "DEV8_TEST_UNSET_SECRET")
    assert (unset.code, "not set: DEV8_TEST_UNSET_SECRET" in unset.err) == (2, True)
    running = api.wait_for(env["id"], "RUNNING")
    assert running["ssh_connection_string"].startswith("ssh -p ")
    assert not (running["status_reason"] or "").startswith("workspace setup")
    assert (live_host.working_tree(env["id"]) / "app" / "README.md").read_text() == "the team's app\n"

    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
    options += ["-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}"]
    ran = cli(
        "ssh",
        env["id"],
        "-i",
        str(tmp_path / "id_ed25519"),
        *options,
        "--",
        'git -C "$WORKSPACE_DIR/app" log --format=%s',
    )
    assert (ran.code, ran.out.strip()) == (0, "app: first commit"), ran.err

    # The token: in the environment's processes' memory, never in a file or on a command line.
    assert files_holding(live_host.data_dir, TOKEN) == []
    assert pids_mentioning(TOKEN) == []

    api.command(env["id"], "delete")
    api.wait_gone(env["id"])


def test_a_failed_clone_is_the_running_environments_reason(api: Api, server: GitServer) -> None:
    env = api.create(
        "without-token",
        repository_url=server.url("app"),  # private, and no GITHUB_TOKEN given
        environment_variables={"GIT_SSL_CAINFO": str(server.ca_file)},
    )
    running = api.wait_for(env["id"], "RUNNING")  # the IDE runs without the repository
    deadline = time.monotonic() + REASON_WAIT
    while not (running["status_reason"] or "").startswith("workspace setup:"):
        assert time.monotonic() < deadline, running
        time.sleep(0.5)
        running = api.get(env["id"]) or {}
    assert running["status"] == "RUNNING"
    assert "the repository was not cloned" in running["status_reason"]
    events = api.request("GET", f"/environments/{env['id']}/events").json()["events"]
    assert [e["reason"] for e in events].count(running["status_reason"]) == 1

    api.command(env["id"], "delete")
    api.wait_gone(env["id"])
