"""LocalCompute against the real code-server (installed by scripts/install-code-server.sh), plus bad
cases driven by small fake binaries: missing binary, death at start, taken port, children that
ignore SIGTERM or leave the group, and reconciliation after a host restart.

Without code-server the real-server tests skip with a printed reason locally and fail under CI=true.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from shared import agent_tokens
from shared.adapters.compute import code_server as installed
from shared.adapters.compute import local as local_compute
from shared.adapters.compute.code_server import NOT_INSTALLED, find_code_server
from shared.adapters.compute.local import LocalCompute
from shared.adapters.workspaces.local import LocalWorkspaceStorage
from shared.domain.resources import ComputeState, compute_name, workspace_name
from shared.errors import PermanentBackendError
from shared.services.ports import ComputeBackend, ComputeSpec, ComputeStatus, Workspace
from tests.recording_server import Recorder, recording_server

ENV_A = "env-0123456789abcdef"
ENV_B = "env-fedcba9876543210"
WAIT_LIMIT = 90.0  # a bound so a broken start cannot hang the run; not a timing assertion
HOST_SECRET = "host-only-secret-value-3f9a"

# Serves /healthz like code-server; FAKE_MODE (passed through the spec) adds misbehaving children.
FAKE_SERVER = """\
import http.server, os, signal, subprocess, sys
args = sys.argv[1:]
port = int(args[args.index("--bind-addr") + 1].rsplit(":", 1)[1])
if os.environ.get("FAKE_MODE") == "children":
    # One child that ignores SIGTERM, and one in a session of its own like a terminal's shell.
    subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    subprocess.Popen(["sleep", "600"], start_new_session=True)
if os.environ.get("FAKE_MODE") == "fork-on-term":
    # Forks a child into the group when told to stop, then exits: a late fork the stop must catch.
    def forks(*_):
        subprocess.Popen(["sleep", "600"])
        os._exit(0)
    signal.signal(signal.SIGTERM, forks)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{"status":"alive"}')
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


# --- helpers ---------------------------------------------------------------------------------------


def make_spec(workspace_dir: str, environment_id: str = ENV_A, **variables: str) -> ComputeSpec:
    return ComputeSpec(
        name=compute_name(environment_id),
        environment_id=environment_id,
        owner="alice",
        image="dev8/python:latest",
        cpu_cores=1,
        memory_gb=2,
        ports=(8000,),
        environment_variables={"DEV8_ENVIRONMENT_ID": environment_id, **variables},
        workspace=Workspace(workspace_name(environment_id), workspace_dir, 20),
        secure_environment={
            "PASSWORD": f"pw-{secrets.token_urlsafe(12)}",
            "GITHUB_TOKEN": f"ghp_{secrets.token_hex(8)}",
        },
    )


def wait_until(
    backend: LocalCompute, name: str, done: Callable[[ComputeStatus], bool], limit: float = WAIT_LIMIT
) -> ComputeStatus:
    deadline = time.monotonic() + limit
    status = backend.status(name)
    while not done(status):
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not settle within {limit:.0f}s; last status: {status}")
        time.sleep(0.2)
        status = backend.status(name)
    return status


def settled(status: ComputeStatus) -> bool:
    return status.state is not ComputeState.PENDING


def group_pids(pgid: int) -> list[int]:
    """Live processes in a process group, seen by ps (independently of the code under test)."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True, check=True).stdout
    return [int(pid) for pid, group, stat in (line.split() for line in out.splitlines()) if
            int(group) == pgid and not stat.startswith("Z")]  # fmt: skip


def sidecar(pid: int) -> bool:
    """The environment's sshd or the git credential cache its setup started."""
    argv = " ".join(cmdline(pid))
    return "credential-cache--daemon" in argv or "/sshd -D" in argv


def alive(pid: int) -> bool:
    out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(out) and not out.startswith("Z")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def get(port: int, path: str, cookie: str | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = connection.getresponse()
    response.read()
    return response


def login(port: int, password: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = urllib.parse.urlencode({"password": password})
    connection.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    return response


def port_of(status: ComputeStatus) -> int:
    assert status.vs_code_url is not None
    port = urllib.parse.urlsplit(status.vs_code_url).port
    assert port is not None
    return port


def recorded(backend: LocalCompute, name: str) -> dict[str, Any]:
    """The state file the backend keeps for a restarted host."""
    return dict(json.loads((backend.root / name / "state.json").read_text()))


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def fake_server(tmp_path: Path) -> str:
    return write_script(tmp_path / "fake-code-server", f"#!{sys.executable}\n{FAKE_SERVER}")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty HOME for the workspace processes: code-server must write nothing there."""
    directory = tmp_path / "home"
    directory.mkdir()
    # The tools' cache (sshd among them) stays where the install scripts put it.
    cache = os.environ.get("DEV8_CACHE_DIR") or str(Path.home() / ".cache" / "dev8")
    monkeypatch.setenv("DEV8_CACHE_DIR", cache)
    monkeypatch.setenv("HOME", str(directory))
    return directory


@pytest.fixture
def host_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret in the host's own environment, which no workspace process may inherit."""
    monkeypatch.setenv("DEV8_TEST_HOST_SECRET", HOST_SECRET)
    return HOST_SECRET


# --- the real code-server ----------------------------------------------------------------------------


def test_lifecycle_with_real_code_server(
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    data_dir: Path,
    host_secret: str,
    home: Path,
) -> None:
    backend = backends(code_server)
    port_type: ComputeBackend = backend  # satisfies the port
    spec = make_spec(workspace, EDITOR="vim")
    password = spec.secure_environment["PASSWORD"]
    compute_dir = data_dir / "compute" / spec.name

    # create -> RUNNING, answering /healthz
    first = port_type.create(spec)
    assert first.state in (ComputeState.PENDING, ComputeState.RUNNING)
    running = wait_until(backend, spec.name, settled)
    assert running.state is ComputeState.RUNNING, running.detail
    # its own sshd on loopback (tests/integration/test_local_ssh.py logs in)
    assert re.fullmatch(r"ssh -p \d+ \S+@127\.0\.0\.1", running.ssh_connection_string or "")
    port = port_of(running)
    assert get(port, "/healthz").status == 200
    url = urllib.parse.urlsplit(running.vs_code_url or "")
    assert urllib.parse.parse_qs(url.query)["folder"] == [workspace]

    # a repeated create is the same process, not a second one
    state_before = (compute_dir / "state.json").read_text()
    assert backend.create(spec).state is ComputeState.RUNNING
    assert backend.start(spec).state is ComputeState.RUNNING
    assert (compute_dir / "state.json").read_text() == state_before
    pgid = int(json.loads(state_before)["pgid"])

    # password login: the IDE needs it, a wrong one is refused, the right one gets a session cookie
    assert get(port, url.path).status == 302
    wrong = login(port, "not-the-password")
    assert "code-server-session" not in (wrong.getheader("Set-Cookie") or "")
    right = login(port, password)
    assert right.status == 302
    cookie = (right.getheader("Set-Cookie") or "").split(";", 1)[0]
    assert cookie.startswith("code-server-session=")
    workbench = get(port, f"/?{url.query}", cookie)
    assert workbench.status == 200

    # the password travels only as an argon2 hash in the environment: not on any command line,
    # nor in the plain anywhere code-server's process was given
    members = group_pids(pgid)
    assert members
    for pid in members:
        assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    environ = Path(f"/proc/{pgid}/environ").read_bytes().split(b"\0")
    assert not any(password.encode() in entry for entry in environ)
    (hashed,) = [entry.split(b"=", 1)[1] for entry in environ if entry.startswith(b"HASHED_PASSWORD=")]
    assert PasswordHasher().verify(hashed.decode(), password)
    assert b"EDITOR=vim" in environ
    assert f"GITHUB_TOKEN={spec.secure_environment['GITHUB_TOKEN']}".encode() in environ
    assert not any(host_secret.encode() in entry for entry in environ)  # the host's secrets stay out
    for path in [compute_dir / "state.json", compute_dir / "code-server.log", *compute_dir.rglob("*")]:
        if path.is_file() and not path.is_socket():
            assert password.encode() not in path.read_bytes(), path
            assert spec.secure_environment["GITHUB_TOKEN"].encode() not in path.read_bytes(), path

    # stop: the whole group is gone and the port closed; a second stop changes nothing
    (Path(workspace) / "notes.txt").write_text("kept across stop and start")
    stopped = backend.stop(spec.name)
    assert stopped.state is ComputeState.STOPPED
    assert group_pids(pgid) == []
    assert not port_open(port)
    assert backend.stop(spec.name).state is ComputeState.STOPPED
    assert backend.create(spec).state is ComputeState.STOPPED  # create leaves an existing one as it is

    # start: RUNNING again, the workspace's files still there
    backend.start(spec)
    again = wait_until(backend, spec.name, settled)
    assert again.state is ComputeState.RUNNING, again.detail
    assert get(port_of(again), "/healthz").status == 200
    assert (Path(workspace) / "notes.txt").read_text() == "kept across stop and start"
    new_pgid = int(recorded(backend, spec.name)["pgid"])
    assert new_pgid != pgid and group_pids(new_pgid)

    # delete: processes and compute dir gone, the workspace kept; a second delete is fine
    backend.delete(spec.name)
    assert group_pids(new_pgid) == []
    assert not compute_dir.exists()
    assert (Path(workspace) / "notes.txt").exists()
    assert backend.status(spec.name).state is ComputeState.ABSENT
    backend.delete(spec.name)
    assert backend.list() == []
    # its config, heartbeat and logs stayed in the compute dir, none in the (shared) home directory
    assert list(home.iterdir()) == []


def test_a_taken_port_is_a_clear_failure_and_a_new_start_recovers(
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = backends(code_server)
    spec = make_spec(workspace)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(local_compute, "_free_port", lambda: taken)
        backend.create(spec)
        failed = wait_until(backend, spec.name, settled)
    assert failed.state is ComputeState.FAILED
    assert f"port {taken} was taken" in (failed.detail or "")
    monkeypatch.undo()

    backend.start(spec)
    recovered = wait_until(backend, spec.name, settled)
    assert recovered.state is ComputeState.RUNNING, recovered.detail
    assert port_of(recovered) != taken


# --- bad cases with fake binaries ------------------------------------------------------------------


def test_missing_binary_is_a_permanent_error_that_says_how_to_install(
    backends: Callable[..., LocalCompute], workspace: str, tmp_path: Path
) -> None:
    backend = backends(str(tmp_path / "no-such-code-server"))
    spec = make_spec(workspace)
    with pytest.raises(PermanentBackendError, match=NOT_INSTALLED.replace(".", r"\.")):
        backend.create(spec)
    with pytest.raises(PermanentBackendError, match="not installed"):
        backend.start(spec)
    assert backend.status(spec.name).state is ComputeState.ABSENT


def test_without_a_setting_the_cache_then_path_are_searched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_server: str
) -> None:
    empty_cache = tmp_path / "cache"
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(PermanentBackendError) as error:
        find_code_server(None, str(empty_cache))
    assert str(error.value) == NOT_INSTALLED

    # a half-done install (no marker) does not count; a finished one does
    install = installed.cache_install_dir(str(empty_cache))
    binary = install / "node_modules" / ".bin" / "code-server"
    binary.parent.mkdir(parents=True)
    binary.symlink_to(fake_server)
    with pytest.raises(PermanentBackendError):
        find_code_server(None, str(empty_cache))
    (install / ".dev8-installed").write_text("done")
    assert find_code_server(None, str(empty_cache)) == str(binary)


def test_a_process_that_dies_at_start_is_failed_with_its_log_scrubbed(
    backends: Callable[..., LocalCompute], workspace: str, tmp_path: Path
) -> None:
    dies = write_script(
        tmp_path / "dies",
        '#!/bin/sh\necho "fatal: cannot load native module" >&2\n'
        'echo "password was $HASHED_PASSWORD"\nexit 3\n',
    )
    backend = backends(dies)
    spec = make_spec(workspace)
    backend.create(spec)
    failed = wait_until(backend, spec.name, settled)
    assert failed.state is ComputeState.FAILED
    detail = failed.detail or ""
    assert "exited during start (exit code 3)" in detail
    assert "fatal: cannot load native module" in detail
    # code-server is given only the password's argon2 hash: a verifier, redacted like a secret
    assert "$argon2" not in detail and "password was [redacted]" in detail, detail

    # a stop settles it; start tries again (and fails the same way); delete cleans up
    assert backend.stop(spec.name).state is ComputeState.STOPPED
    backend.start(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.FAILED
    backend.delete(spec.name)
    assert backend.status(spec.name).state is ComputeState.ABSENT


def test_no_answer_within_the_boot_timeout_is_failed(
    backends: Callable[..., LocalCompute], workspace: str, tmp_path: Path
) -> None:
    silent = write_script(tmp_path / "silent", "#!/bin/sh\necho starting\nexec sleep 600\n")
    now = [datetime(2026, 11, 21, 12, 0, tzinfo=UTC)]
    backend = backends(silent, boot_timeout_seconds=60, clock=lambda: now[0])
    spec = make_spec(workspace)
    assert backend.create(spec).state is ComputeState.PENDING
    log = backend.root / spec.name / "code-server.log"
    deadline = time.monotonic() + WAIT_LIMIT
    while "starting" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # the script has run its first line
    now[0] += timedelta(seconds=30)
    assert backend.status(spec.name).state is ComputeState.PENDING
    now[0] += timedelta(seconds=31)
    late = backend.status(spec.name)
    assert late.state is ComputeState.FAILED
    assert "no answer on port" in (late.detail or "") and "starting" in (late.detail or "")


def test_stop_ends_children_that_ignore_sigterm_or_left_the_group(
    backends: Callable[..., LocalCompute], workspace: str, fake_server: str
) -> None:
    backend = backends(fake_server, stop_grace_seconds=0.5)
    spec = make_spec(workspace, FAKE_MODE="children")
    backend.create(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    state = recorded(backend, spec.name)
    # the leader's descendants: the SIGTERM-ignoring child (same group) and the escaped one
    deadline = time.monotonic() + WAIT_LIMIT
    while len(descendants := _descendants(state["pid"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(descendants) >= 2
    assert any(_pgid(pid) != state["pgid"] for pid in descendants)  # one left the group

    assert backend.stop(spec.name).state is ComputeState.STOPPED
    assert group_pids(state["pgid"]) == []
    assert not any(alive(pid) for pid in descendants)


def test_stop_ends_a_child_forked_after_the_signals_went_out(
    backends: Callable[..., LocalCompute], workspace: str, fake_server: str
) -> None:
    backend = backends(fake_server, stop_grace_seconds=5)
    spec = make_spec(workspace, FAKE_MODE="fork-on-term")
    backend.create(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    pgid = recorded(backend, spec.name)["pgid"]
    # Only the leader when the stop begins, besides the sshd and git credential cache beside it.
    assert [pid for pid in group_pids(pgid) if not sidecar(pid)] == [pgid]
    assert backend.stop(spec.name).state is ComputeState.STOPPED
    assert group_pids(pgid) == []  # the sleep it forked on SIGTERM went too


def test_a_restarted_host_finds_its_processes_and_reconciles_strays(
    backends: Callable[..., LocalCompute], data_dir: Path, fake_server: str
) -> None:
    storage = LocalWorkspaceStorage(data_dir)
    first_host = backends(fake_server)
    known = make_spec(storage.ensure(workspace_name(ENV_A), 1).location, ENV_A)
    orphan = make_spec(storage.ensure(workspace_name(ENV_B), 1).location, ENV_B)
    for spec in (known, orphan):
        first_host.create(spec)
        assert wait_until(first_host, spec.name, settled).state is ComputeState.RUNNING

    # a new host over the same data dir sees both from their state files, and no second process
    second_host = backends(fake_server)
    assert {s.name: s.state for s in second_host.list()} == {
        known.name: ComputeState.RUNNING,
        orphan.name: ComputeState.RUNNING,
    }
    assert second_host.create(known).state is ComputeState.RUNNING
    orphan_pgid = recorded(second_host, orphan.name)["pgid"]

    # only the environment the records know keeps running
    assert second_host.reconcile_processes([known.name]) == [orphan.name]
    assert group_pids(orphan_pgid) == []
    assert second_host.status(orphan.name).state is ComputeState.STOPPED
    assert second_host.status(known.name).state is ComputeState.RUNNING
    assert second_host.reconcile_processes([known.name]) == []


def test_a_process_without_a_state_file_is_found_by_reconcile(
    backends: Callable[..., LocalCompute], workspace: str, fake_server: str
) -> None:
    backend = backends(fake_server)
    spec = make_spec(workspace)
    backend.create(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    state_file = backend.root / spec.name / "state.json"
    pgid = recorded(backend, spec.name)["pgid"]
    state_file.unlink()  # as if the host died between starting the process and recording it

    assert backend.status(spec.name).state is ComputeState.ABSENT
    assert backend.reconcile_processes([spec.name]) == [spec.name]
    assert group_pids(pgid) == []


def test_bad_names_are_refused(backends: Callable[..., LocalCompute], fake_server: str) -> None:
    backend = backends(fake_server)
    for name in ("../escape", "UPPER", "", "a/b"):
        with pytest.raises(PermanentBackendError, match="invalid compute name"):
            backend.status(name)


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, pending = [], list(children.get(pid, []))
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _pgid(pid: int) -> int:
    return int(subprocess.run(["ps", "-o", "pgid=", "-p", str(pid)], capture_output=True, text=True).stdout)


# --- the activity agent ------------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as server:
        yield server


def with_agent(
    spec: ComputeSpec, recorder: Recorder, interval: str = "0.2", samples: bool = False
) -> ComputeSpec:
    """The spec as the service makes it for an environment that reports activity (with resource
    samples, when asked: then it reports every interval, idle or not)."""
    token = agent_tokens.mint(spec.owner, spec.environment_id)
    return dataclasses.replace(
        spec,
        environment_variables={
            **spec.environment_variables,
            agent_tokens.ACTIVITY_URL_VARIABLE: recorder.url(spec.environment_id),
            "DEV8_AGENT_INTERVAL": interval,
            "DEV8_AGENT_SAMPLES": "1" if samples else "0",
            "DEV8_AGENT_DISK_EVERY": "1",
            "DEV8_CPU_CORES": f"{spec.cpu_cores:g}",
        },
        secure_environment={**spec.secure_environment, agent_tokens.AGENT_TOKEN_VARIABLE: token},
    )


def cmdline(pid: int) -> list[str]:
    """A process's argv; empty once it has gone (the agent's short `sleep`s come and go)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode() for arg in raw.split(b"\0") if arg]


def environ(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


def agent_pids(pgid: int) -> list[int]:
    """The agent: the child of the leader (code-server) that runs the script. Not the launcher's fork
    before its exec, whose arguments also name the script, nor the agent's own short-lived forks
    (command substitutions), which are its children."""
    agent = ["/bin/sh", str(installed.ACTIVITY_AGENT)]
    return [pid for pid in group_pids(pgid) if cmdline(pid)[:2] == agent and _parent(pid) == pgid]


def wait_for_log(backend: LocalCompute, name: str, text: str) -> str:
    log = backend.root / name / "code-server.log"
    deadline = time.monotonic() + WAIT_LIMIT
    while text not in (content := log.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never logged: {content}"
        time.sleep(0.05)
    return content


def assert_agent_beside(backend: LocalCompute, spec: ComputeSpec, pgid: int) -> int:
    """The agent runs in code-server's group with the token in its environment only."""
    token = spec.secure_environment[agent_tokens.AGENT_TOKEN_VARIABLE]
    deadline = time.monotonic() + WAIT_LIMIT
    while not (agents := agent_pids(pgid)):
        assert time.monotonic() < deadline, f"no activity agent in group {pgid}: {group_pids(pgid)}"
        time.sleep(0.05)
    (agent,) = agents
    compute_dir = backend.root / spec.name
    agent_env = environ(agent)
    assert agent_env[agent_tokens.AGENT_TOKEN_VARIABLE] == token
    assert agent_env["CODE_SERVER_USER_DATA_DIR"] == str(compute_dir / "user-data")
    assert agent_env["XDG_DATA_HOME"] == str(compute_dir / "data")  # where code-server's heartbeat is
    # SSH sessions are connections to this environment's own sshd (never the host's port 2222).
    ssh_port = recorded(backend, spec.name)["ssh"].split()[2]
    assert agent_env["DEV8_AGENT_SSH_PORT"] == ssh_port != "2222"
    for name in ("PASSWORD", "HASHED_PASSWORD", "GITHUB_TOKEN", "DEV8_AGENT_UNSET"):
        assert name not in agent_env, name
    leader_env = environ(pgid)
    assert agent_tokens.AGENT_TOKEN_VARIABLE not in leader_env and "DEV8_AGENT_UNSET" not in leader_env
    assert "PASSWORD" not in leader_env
    assert PasswordHasher().verify(leader_env["HASHED_PASSWORD"], spec.secure_environment["PASSWORD"])
    assert "--user-data-dir" in cmdline(pgid)  # the leader is code-server itself (the launcher exec'd)
    for pid in group_pids(pgid):
        assert token not in " ".join(cmdline(pid)), cmdline(pid)
    return agent


def test_the_agent_runs_beside_the_real_code_server_and_reports_its_heartbeat(
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    home: Path,
    recorder: Recorder,
) -> None:
    backend = backends(code_server)
    spec = with_agent(make_spec(workspace), recorder)
    token = spec.secure_environment[agent_tokens.AGENT_TOKEN_VARIABLE]
    backend.create(spec)
    running = wait_until(backend, spec.name, settled)
    assert running.state is ComputeState.RUNNING, running.detail
    pgid = int(recorded(backend, spec.name)["pgid"])
    agent = assert_agent_beside(backend, spec, pgid)

    # Health probes (the backend's own included) are not use: no heartbeat, idle, nothing reported.
    heartbeat = backend.root / spec.name / "data" / "code-server" / "heartbeat"
    wait_for_log(backend, spec.name, "activity: idle")
    assert get(port_of(running), "/healthz").status == 200
    assert not heartbeat.exists()
    assert recorder.requests == []

    # A request to the IDE makes code-server write its heartbeat; the agent reports it with the token.
    assert get(port_of(running), "/login").status == 200
    (request, *_) = recorder.wait_for(1)
    assert heartbeat.is_file()
    assert request.path == f"/api/v1/environments/{spec.environment_id}/activity"
    assert request.authorization == f"Bearer {token}"
    log = wait_for_log(backend, spec.name, "report accepted")
    assert token not in log

    # stop ends the agent with code-server: the whole group is gone.
    assert backend.stop(spec.name).state is ComputeState.STOPPED
    assert group_pids(pgid) == [] and not alive(agent)


def test_the_agents_samples_follow_the_work_done_in_the_workspace(
    code_server: str,
    backends: Callable[..., LocalCompute],
    workspace: str,
    home: Path,
    recorder: Recorder,
) -> None:
    backend = backends(code_server)
    spec = with_agent(make_spec(workspace), recorder, samples=True)
    backend.create(spec)
    running = wait_until(backend, spec.name, settled)
    assert running.state is ComputeState.RUNNING, running.detail
    assert_agent_beside(backend, spec, int(recorded(backend, spec.name)["pgid"]))

    def samples_from(start: int) -> list[dict[str, Any]]:
        return [json.loads(r.body)["sample"] for r in recorder.requests[start:] if "sample" in r.body]

    # Idle, and still measured: code-server's own processes, the working tree as it is.
    recorder.wait_for(2)
    first = samples_from(0)[-1]
    assert first["memory_mb"] > 30  # a real node process, measured from its /proc entries
    assert json.loads(recorder.requests[0].body)["active"] is False

    # Work in the workspace: 24 MB of files written into the working tree...
    seen = len(recorder.requests)
    (Path(workspace) / "build").mkdir()
    for part in range(3):
        (Path(workspace) / "build" / f"part{part}.bin").write_bytes(os.urandom(8 * 2**20))
    deadline = time.monotonic() + WAIT_LIMIT
    while not any(s["disk_mb"] >= first["disk_mb"] + 24 for s in samples_from(seen)):
        assert time.monotonic() < deadline, f"the tree's growth never showed: {samples_from(seen)}"
        time.sleep(0.1)

    # ...and the IDE serving requests: code-server's CPU shows, and the report says it is in use.
    seen = len(recorder.requests)
    while not any(s["cpu_percent"] >= 1.0 for s in samples_from(seen)):
        assert time.monotonic() < deadline, f"code-server's CPU never showed: {samples_from(seen)}"
        for _ in range(20):
            assert get(port_of(running), "/login").status == 200
    assert any(json.loads(r.body)["active"] for r in recorder.requests[seen:])
    backend.delete(spec.name)


def test_the_agent_stops_and_starts_with_its_environment(
    backends: Callable[..., LocalCompute], workspace: str, fake_server: str, recorder: Recorder
) -> None:
    backend = backends(fake_server)
    spec = with_agent(make_spec(workspace), recorder, interval="0.1")
    backend.create(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    pgid = int(recorded(backend, spec.name)["pgid"])
    agent = assert_agent_beside(backend, spec, pgid)
    wait_for_log(backend, spec.name, "activity: idle")
    assert recorder.requests == []

    # The heartbeat file where code-server writes it (its XDG data dir) is what the agent reads.
    heartbeat = backend.root / spec.name / "data" / "code-server" / "heartbeat"
    heartbeat.parent.mkdir(parents=True, exist_ok=True)
    heartbeat.touch()
    (request, *_) = recorder.wait_for(1)
    assert request.authorization == f"Bearer {spec.secure_environment[agent_tokens.AGENT_TOKEN_VARIABLE]}"

    assert backend.stop(spec.name).state is ComputeState.STOPPED
    assert group_pids(pgid) == [] and not alive(agent)
    backend.start(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    new_pgid = int(recorded(backend, spec.name)["pgid"])
    assert_agent_beside(backend, spec, new_pgid)
    backend.delete(spec.name)
    assert group_pids(new_pgid) == []


def test_an_agent_left_alone_is_found_by_reconcile(
    backends: Callable[..., LocalCompute], workspace: str, fake_server: str, recorder: Recorder
) -> None:
    backend = backends(fake_server)
    spec = with_agent(make_spec(workspace), recorder)
    backend.create(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    pgid = int(recorded(backend, spec.name)["pgid"])
    agent = assert_agent_beside(backend, spec, pgid)
    # code-server dies and the host forgets it: only the agent is left, found by its command line.
    os.kill(pgid, 9)
    deadline = time.monotonic() + WAIT_LIMIT
    while alive(pgid) and time.monotonic() < deadline:
        backend.status(spec.name)  # reaps the leader
        time.sleep(0.05)
    (backend.root / spec.name / "state.json").unlink()
    assert alive(agent)
    assert backend.reconcile_processes([spec.name]) == [spec.name]
    assert not alive(agent)


def test_without_an_activity_url_no_agent_runs_and_code_server_never_sees_the_token(
    backends: Callable[..., LocalCompute], workspace: str, fake_server: str, recorder: Recorder
) -> None:
    backend = backends(fake_server)
    spec = with_agent(make_spec(workspace), recorder)
    variables = dict(spec.environment_variables)
    del variables[agent_tokens.ACTIVITY_URL_VARIABLE]
    spec = dataclasses.replace(spec, environment_variables=variables)
    backend.create(spec)
    assert wait_until(backend, spec.name, settled).state is ComputeState.RUNNING
    pgid = int(recorded(backend, spec.name)["pgid"])
    assert agent_pids(pgid) == []
    assert agent_tokens.AGENT_TOKEN_VARIABLE not in environ(pgid)


def test_a_missing_agent_script_is_a_permanent_error(
    backends: Callable[..., LocalCompute],
    workspace: str,
    fake_server: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    backend = backends(fake_server, activity_agent=tmp_path / "no-such-agent")
    spec = with_agent(make_spec(workspace), recorder)
    with pytest.raises(PermanentBackendError, match="activity agent"):
        backend.create(spec)
    assert backend.status(spec.name).state is ComputeState.ABSENT


def test_the_launcher_is_clean_posix_sh(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    script = tmp_path / "launch.sh"
    script.write_text("#!/bin/sh\n" + installed.LAUNCH)
    result = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
