"""SSH on the local backend, with the real programs: the environment's own sshd (Debian's
openssh-server, scripts/install-sshd.sh) beside the real code-server, and OpenSSH's client. A
command runs in the workspace and a file it writes is in the IDE's folder; a wrong key, a
password and root are refused; an open session is activity; the host key survives a stop and
start; a stop ends sshd."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.adapters.compute import local_ssh
from shared.adapters.compute.local import LocalCompute
from shared.domain.resources import ComputeState
from shared.domain.variables import SESSION_VARIABLES
from shared.services.ports import ComputeSpec
from tests.integration.test_local_compute import (
    WAIT_LIMIT,
    make_spec,
    port_open,
    settled,
    wait_for_log,
    wait_until,
    with_agent,
)
from tests.recording_server import Recorder, recording_server


@pytest.fixture(scope="module")
def ssh_server() -> local_ssh.SshServer:
    server, why = local_ssh.find_server()
    if server is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}. The SSH tests must not be skipped in CI.", pytrace=False)
        print(f"SKIP: {why}")
        pytest.skip(why)
    return server


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as server:
        yield server


@dataclasses.dataclass
class Client:
    """OpenSSH's client with a key of its own and a known_hosts file of its own."""

    key: Path
    known_hosts: Path

    def run(
        self, connection: str, command: str, *options: str, user: str | None = None, key: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        port, login = re.fullmatch(r"ssh -p (\d+) (\S+)", connection).groups()  # type: ignore[union-attr]
        if user is not None:
            login = f"{user}@{login.split('@')[1]}"
        argv = [
            "ssh", "-p", port, "-i", str(key or self.key), "-F", "/dev/null",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
            *options, login, command,
        ]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=WAIT_LIMIT, check=False)

    def when_up(self, connection: str, command: str) -> subprocess.CompletedProcess[str]:
        """`run`, once sshd listens (it starts beside code-server, which may answer first)."""
        deadline = time.monotonic() + WAIT_LIMIT
        while "Connection refused" in (done := self.run(connection, command)).stderr:
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.1)
        return done


def keypair(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(keypair(tmp_path / "id_ed25519"), tmp_path / "known_hosts")


def ssh_spec(workspace: str, client: Client, recorder: Recorder) -> ComputeSpec:
    spec = with_agent(make_spec(workspace), recorder, interval="0.2")
    key = client.key.with_suffix(".pub").read_text().strip()
    secrets = {**spec.secure_environment, "SSH_PUBLIC_KEY": f"# a comment line is dropped\n{key}\n"}
    return dataclasses.replace(spec, secure_environment=secrets)


def test_ssh_into_the_workspace_with_the_users_key_only(
    ssh_server: local_ssh.SshServer,
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    client: Client,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    backend = backends(code_server)
    spec = ssh_spec(workspace, client, recorder)
    backend.create(spec)
    running = wait_until(backend, spec.name, settled)
    assert running.state is ComputeState.RUNNING, running.detail
    connection = running.ssh_connection_string or ""
    assert re.fullmatch(rf"ssh -p \d+ {ssh_server.user}@127\.0\.0\.1", connection), connection
    folder = urllib.parse.parse_qs(urllib.parse.urlsplit(running.vs_code_url or "").query)["folder"][0]

    # A command in the workspace: its HOME and working tree, as the user (never root).
    done = client.when_up(
        connection, 'cd "$WORKSPACE_DIR" && printf "from ssh" > ssh-note.txt && id -un && echo "$HOME"'
    )
    assert done.returncode == 0, done.stderr
    user, home = done.stdout.split()
    assert user == ssh_server.user != "root"
    assert home == str(backend.root / spec.name / "home")
    assert (Path(folder) / "ssh-note.txt").read_text() == "from ssh"  # in the folder the IDE opened
    # git in the session has the identity and credential cache the setup configured.
    identity = client.run(connection, "git config --global user.name; git config --global credential.helper")
    assert identity.stdout.splitlines()[0] == "Dev8 Developer"
    assert identity.stdout.splitlines()[1].startswith("cache --timeout=")

    # Refused: another key, a password, root (with the right key), an unknown user.
    stranger = keypair(tmp_path / "stranger")
    refused = [
        client.run(connection, "true", key=stranger),
        client.run(connection, "true", "-o", "PubkeyAuthentication=no", "-o", "PasswordAuthentication=yes"),
        client.run(connection, "true", user="root"),
        client.run(connection, "true", user="nobody"),
    ]
    for attempt in refused:
        assert attempt.returncode == 255 and "Permission denied (publickey)" in attempt.stderr, attempt.stderr

    # An open session is activity, though no browser is connected.
    wait_for_log(backend, spec.name, "activity: idle")
    seen = len(recorder.requests)
    session = subprocess.Popen(
        ["ssh", *client_options(client, connection), "-N"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_log(backend, spec.name, "activity: SSH session open")
        recorder.wait_for(seen + 1)
    finally:
        session.terminate()
        session.wait(timeout=WAIT_LIMIT)

    # Stop ends sshd; a start brings it back on a new port with the same host key.
    ssh_port = int(connection.split()[2])
    assert backend.stop(spec.name).state is ComputeState.STOPPED
    assert not port_open(ssh_port)
    backend.start(spec)
    again = wait_until(backend, spec.name, settled)
    assert again.state is ComputeState.RUNNING and again.ssh_connection_string
    strict = client.when_up(again.ssh_connection_string, 'cat "$WORKSPACE_DIR/ssh-note.txt"')
    assert (strict.returncode, strict.stdout) == (0, "from ssh"), strict.stderr
    known = client.known_hosts.read_text()
    assert known.count("ssh-ed25519") == 2 and len(set(line.split()[-1] for line in known.splitlines())) == 1


def client_options(client: Client, connection: str) -> list[str]:
    port, login = connection.split()[2], connection.split()[3]
    return [
        "-p", port, "-i", str(client.key), "-F", "/dev/null", "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={client.known_hosts}", "-o", "StrictHostKeyChecking=accept-new", login,
    ]  # fmt: skip


def test_without_a_key_nobody_logs_in(
    ssh_server: local_ssh.SshServer,
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    client: Client,
) -> None:
    backend = backends(code_server)
    spec = make_spec(workspace)
    backend.create(spec)
    running = wait_until(backend, spec.name, settled)
    assert running.state is ComputeState.RUNNING and running.ssh_connection_string
    attempt = client.when_up(running.ssh_connection_string, "true")
    assert attempt.returncode == 255 and "Permission denied (publickey)" in attempt.stderr, attempt.stderr


# Values sshd's config parser would misread if written plainly (tests/infra/test_entrypoint.py
# holds the images' entrypoint to the same words).
TRICKY = {
    "PLAIN": "plain",
    "SPACED": "with  two spaces",
    "QUOTED": 'say "hi"',
    "BACKSLASHED": "C:\\temp\\",
    "BOTH": 'a\\"b',
    "DOLLAR": "$HOME and `id`",
    "SINGLE": "it's",
    "HASH": "#not a comment",
    "UNICODE": "ünïcödé €",
    "EMPTY": "",
    # At the API's bounds (4,096 characters a value, 32 KiB in all): one config line of ~32 KB.
    **{f"LONG_{n}": f"{n}" * 3900 for n in range(7)},
}


def test_a_session_has_the_users_variables_but_never_a_secret(
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    client: Client,
    recorder: Recorder,
    ssh_server: local_ssh.SshServer,
) -> None:
    backend = backends(code_server)
    spec = ssh_spec(workspace, client, recorder)
    variables = {**TRICKY, "MULTILINE": "one\ntwo"}
    spec = dataclasses.replace(
        spec,
        environment_variables={
            **spec.environment_variables,
            **variables,
            SESSION_VARIABLES: " ".join(variables),
        },
        secure_environment={**spec.secure_environment, "OPENAI_API_KEY": "sk-never-in-a-session"},
    )
    backend.create(spec)
    running = wait_until(backend, spec.name, settled)
    assert running.state is ComputeState.RUNNING, running.detail
    names = [*TRICKY, "MULTILINE", "OPENAI_API_KEY"]
    script = "; ".join(f'printf "%s\\0" "${{{name}-unset}}"' for name in names)
    done = client.when_up(running.ssh_connection_string or "", script)
    assert done.returncode == 0, done.stderr
    seen = dict(zip(names, done.stdout.split("\0"), strict=False))
    assert {name: seen[name] for name in TRICKY} == TRICKY  # byte for byte, whatever sshd's quoting
    assert seen["MULTILINE"] == "unset"  # a line break cannot go in sshd's config: left out, and said
    assert seen["OPENAI_API_KEY"] == "unset"
    wait_for_log(backend, spec.name, "not in SSH sessions (a line break in the value): MULTILINE")
