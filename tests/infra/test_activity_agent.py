"""docker/base/dev8-activity-agent, the real script run by /bin/sh: a temporary HOME with code-server's
heartbeat file, fake /proc/net tables for SSH sessions, and a recording HTTP server on 127.0.0.1 in
place of the API. A fake `curl` that records its argv and standard input proves the token never
travels on a command line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared import agent_tokens
from tests.infra.tooling import ROOT
from tests.recording_server import Recorder, recording_server

AGENT = ROOT / "docker" / "base" / "dev8-activity-agent"
ENV_ID = "env-0123456789abcdef"
WAIT_LIMIT = 30.0  # a bound so a broken agent cannot hang the run; not a timing assertion
SSH_HEX = "08AE"  # 2222
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
TCP6_HEADER = (
    "  sl  local_address                         remote_address                        st tx_queue "
    "rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
)


def tcp_line(local_port: str, remote_port: str, state: str) -> str:
    return (
        f"   0: 0100007F:{local_port} 0100007F:{remote_port} {state} 00000000:00000000 00:00000000 "
        "00000000  1000        0 12345 1 0000000000000000 20 4 30 10 -1\n"
    )


def tcp6_line(local_port: str, remote_port: str, state: str) -> str:
    address = "0000000000000000FFFF00000100007F"
    return (
        f"   0: {address}:{local_port} {address}:{remote_port} {state} 00000000:00000000 00:00000000 "
        "00000000  1000        0 54321 1 0000000000000000 20 4 30 10 -1\n"
    )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as server:
        yield server


@dataclass
class Workspace:
    home: Path
    proc_net: Path
    token: str
    env: dict[str, str]

    @property
    def heartbeat(self) -> Path:
        """Where code-server writes it: its data dir, under XDG_DATA_HOME or ~/.local/share."""
        return self.home / ".local" / "share" / "code-server" / "heartbeat"

    def beat(self, age_seconds: float = 0) -> Path:
        return touch(self.heartbeat, age_seconds)

    def ssh(self, tcp: str = "", tcp6: str = "") -> None:
        (self.proc_net / "tcp").write_text(HEADER + tcp)
        (self.proc_net / "tcp6").write_text(TCP6_HEADER + tcp6)

    def run(self, *args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(AGENT), *args],
            env=merged(self.env, overrides),
            capture_output=True,
            text=True,
            timeout=WAIT_LIMIT,
            check=False,
        )


def touch(path: Path, age_seconds: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    when = time.time() - age_seconds
    os.utime(path, (when, when))
    return path


def merged(env: dict[str, str], overrides: dict[str, str | None]) -> dict[str, str]:
    result = dict(env)
    for name, value in overrides.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


@pytest.fixture
def workspace(tmp_path: Path, recorder: Recorder) -> Workspace:
    home = tmp_path / "home"
    proc_net = tmp_path / "proc-net"
    home.mkdir()
    proc_net.mkdir()
    token = agent_tokens.mint("alice", ENV_ID)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DEV8_ACTIVITY_URL": recorder.url(ENV_ID),
        "DEV8_AGENT_TOKEN": token,
        "DEV8_AGENT_ONCE": "1",
        "DEV8_PROC_NET": str(proc_net),
        "DEV8_AGENT_SAMPLES": "0",  # activity alone; the samples' tests turn them on
    }
    state = Workspace(home, proc_net, token, env)
    state.ssh()  # no connections at all
    return state


def assert_token_not_printed(result: subprocess.CompletedProcess[str], token: str) -> None:
    assert token not in result.stdout and token not in result.stderr
    secret_part = token.rsplit(".", 1)[1]
    assert secret_part not in result.stdout and secret_part not in result.stderr


# --- code-server's heartbeat --------------------------------------------------------------------------


def test_a_fresh_heartbeat_is_reported_with_the_token(workspace: Workspace, recorder: Recorder) -> None:
    workspace.beat()
    result = workspace.run()
    assert result.returncode == 0, result.stderr
    (request,) = recorder.requests
    assert request.path == f"/api/v1/environments/{ENV_ID}/activity"
    assert request.authorization == f"Bearer {workspace.token}"
    assert request.content_type == "application/json" and request.body == "{}"
    assert "activity: IDE in use" in result.stderr and "report accepted" in result.stderr
    assert result.stdout == ""
    assert_token_not_printed(result, workspace.token)


def test_a_stale_heartbeat_and_no_ssh_session_is_not_reported(
    workspace: Workspace, recorder: Recorder
) -> None:
    workspace.beat(age_seconds=600)
    result = workspace.run()
    assert result.returncode == 0, result.stderr
    assert recorder.requests == []
    assert "activity: idle" in result.stderr


def test_no_heartbeat_at_all_is_idle(workspace: Workspace, recorder: Recorder) -> None:
    result = workspace.run()
    assert result.returncode == 0 and recorder.requests == []
    assert "activity: idle" in result.stderr


def test_freshness_window_is_configurable(workspace: Workspace, recorder: Recorder) -> None:
    workspace.beat(age_seconds=300)
    assert workspace.run().returncode == 0 and recorder.requests == []  # default 120 s: stale
    assert workspace.run(DEV8_AGENT_FRESH_SECONDS="600").returncode == 0
    assert len(recorder.requests) == 1


def test_heartbeat_under_xdg_data_home(workspace: Workspace, recorder: Recorder, tmp_path: Path) -> None:
    # The local backend gives code-server (and the agent) an XDG_DATA_HOME of its own.
    data = tmp_path / "data"
    touch(data / "code-server" / "heartbeat")
    assert workspace.run(XDG_DATA_HOME=str(data)).returncode == 0
    assert len(recorder.requests) == 1
    workspace.beat()  # HOME's is not code-server's once XDG_DATA_HOME is set
    (data / "code-server" / "heartbeat").unlink()
    assert workspace.run(XDG_DATA_HOME=str(data)).returncode == 0
    assert len(recorder.requests) == 1


def test_heartbeat_in_the_user_data_dir_by_variable_or_argument(
    workspace: Workspace, recorder: Recorder, tmp_path: Path
) -> None:
    user_data = tmp_path / "user-data"
    touch(user_data / "heartbeat")
    assert workspace.run(CODE_SERVER_USER_DATA_DIR=str(user_data)).returncode == 0
    assert len(recorder.requests) == 1
    assert workspace.run("--user-data-dir", str(user_data)).returncode == 0
    assert len(recorder.requests) == 2
    assert workspace.run().returncode == 0  # neither: that heartbeat is not looked at
    assert len(recorder.requests) == 2


# --- SSH sessions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tcp", "tcp6", "reported"),
    [
        (tcp_line(SSH_HEX, "D431", "01"), "", True),  # an established session to sshd
        ("", tcp6_line(SSH_HEX, "D431", "01"), True),  # the same over IPv6
        (tcp_line(SSH_HEX, "0000", "0A"), tcp6_line(SSH_HEX, "0000", "0A"), False),  # sshd listening only
        (tcp_line("D431", SSH_HEX, "01"), "", False),  # an outgoing connection to another host's 2222
        (tcp_line(SSH_HEX, "D431", "06"), "", False),  # TIME_WAIT: the session has ended
        (tcp_line("1F90", "D431", "01"), "", False),  # a browser on code-server's port is not SSH
    ],
    ids=["ipv4-session", "ipv6-session", "listening", "outgoing", "time-wait", "other-port"],
)
def test_ssh_sessions_from_proc_net(
    workspace: Workspace, recorder: Recorder, tcp: str, tcp6: str, reported: bool
) -> None:
    workspace.beat(age_seconds=600)
    workspace.ssh(tcp, tcp6)
    result = workspace.run()
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == (1 if reported else 0)
    if reported:
        assert "activity: SSH session open" in result.stderr
        assert recorder.requests[0].authorization == f"Bearer {workspace.token}"


def test_ssh_port_is_configurable_and_zero_turns_it_off(workspace: Workspace, recorder: Recorder) -> None:
    workspace.ssh(tcp_line(SSH_HEX, "D431", "01") + tcp_line("0016", "D432", "01"))
    assert workspace.run(DEV8_AGENT_SSH_PORT="0").returncode == 0
    assert recorder.requests == []
    assert workspace.run(DEV8_AGENT_SSH_PORT="22").returncode == 0  # 0x0016
    assert len(recorder.requests) == 1


def test_missing_proc_net_tables_mean_no_ssh(workspace: Workspace, recorder: Recorder) -> None:
    (workspace.proc_net / "tcp").unlink()
    (workspace.proc_net / "tcp6").unlink()
    result = workspace.run()
    assert result.returncode == 0 and recorder.requests == []
    assert "awk" not in result.stderr  # no error noise either


# --- configuration and failures -------------------------------------------------------------------------


@pytest.mark.parametrize("absent", ["DEV8_ACTIVITY_URL", "DEV8_AGENT_TOKEN"])
def test_exits_quietly_without_its_variables(workspace: Workspace, recorder: Recorder, absent: str) -> None:
    workspace.beat()
    result = workspace.run(**{absent: None, "DEV8_AGENT_ONCE": None})  # would loop if it went on
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert recorder.requests == []
    assert workspace.run(**{absent: ""}).returncode == 0 and recorder.requests == []


@pytest.mark.parametrize(
    "token",
    [
        'abc"\nurl = "http://127.0.0.1:1/stolen',  # a second option for curl's config
        "abc\\def",
        "abc def",
        'abc"',
    ],
)
def test_a_token_that_could_inject_curl_options_is_refused(
    workspace: Workspace, recorder: Recorder, token: str
) -> None:
    workspace.beat()
    result = workspace.run(DEV8_AGENT_TOKEN=token)
    assert result.returncode == 2
    assert "DEV8_AGENT_TOKEN is malformed" in result.stderr
    assert token not in result.stderr and recorder.requests == []


def test_a_url_that_is_not_http_is_refused(workspace: Workspace, recorder: Recorder) -> None:
    workspace.beat()
    result = workspace.run(DEV8_ACTIVITY_URL="file:///etc/passwd")
    assert result.returncode == 2 and "not an http(s) URL" in result.stderr


def test_a_refused_report_is_logged_without_the_token(workspace: Workspace, recorder: Recorder) -> None:
    recorder.status = 401
    workspace.beat()
    result = workspace.run()
    assert result.returncode == 1
    assert "report refused: HTTP 401" in result.stderr
    assert len(recorder.requests) == 1
    assert_token_not_printed(result, workspace.token)


def test_an_unreachable_api_is_logged_without_the_token(workspace: Workspace) -> None:
    workspace.beat()
    result = workspace.run(DEV8_ACTIVITY_URL=f"http://127.0.0.1:{closed_port()}/api/v1/x/activity")
    assert result.returncode == 1
    assert "report failed: no answer from the API" in result.stderr
    assert_token_not_printed(result, workspace.token)


def test_a_proxy_in_the_environment_is_not_used_for_a_local_api(
    workspace: Workspace, recorder: Recorder
) -> None:
    workspace.beat()
    dead_proxy = "http://127.0.0.1:9"
    result = workspace.run(http_proxy=dead_proxy, HTTP_PROXY=dead_proxy, ALL_PROXY=dead_proxy)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1


def test_the_token_is_never_on_a_command_line(workspace: Workspace, tmp_path: Path) -> None:
    # A fake curl first on PATH records what it was given: argv and standard input.
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    fake = bin_dir / "curl"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"record = {str(record)!r}\n"
        "open(os.path.join(record, 'argv.json'), 'w').write(json.dumps(sys.argv))\n"
        "open(os.path.join(record, 'stdin'), 'w').write(sys.stdin.read())\n"
        "print('204', end='')\n"
    )
    fake.chmod(0o755)
    workspace.beat()
    result = workspace.run(PATH=f"{bin_dir}:{workspace.env['PATH']}")
    assert result.returncode == 0, result.stderr
    assert_token_not_printed(result, workspace.token)
    argv = (record / "argv.json").read_text()
    assert workspace.token not in argv and workspace.token.rsplit(".", 1)[1] not in argv
    assert '"--config", "-"' in argv  # the header comes from standard input...
    config = (record / "stdin").read_text()
    assert config == f'header = "Authorization: Bearer {workspace.token}"\n'  # ...and only it


# --- the loop -----------------------------------------------------------------------------------------------


def test_the_loop_reports_while_active_and_logs_only_changes(
    workspace: Workspace, recorder: Recorder, tmp_path: Path
) -> None:
    log_path = tmp_path / "agent.log"
    workspace.beat()
    with log_path.open("w") as log:
        agent = subprocess.Popen(
            ["/bin/sh", str(AGENT)],
            env=merged(workspace.env, {"DEV8_AGENT_ONCE": None, "DEV8_AGENT_INTERVAL": "0.1"}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # ended below as a group: the shell and its sleep
        )
    try:
        recorder.wait_for(3)  # several reports while the heartbeat stays fresh
        workspace.beat(age_seconds=600)
        wait_for_text(log_path, "activity: idle")
        after_idle = len(recorder.requests)
        time.sleep(1.0)  # ten intervals: an idle agent must not report (a bound, not a timing check)
        assert len(recorder.requests) == after_idle
        workspace.ssh(tcp_line(SSH_HEX, "D431", "01"))
        wait_for_text(log_path, "activity: SSH session open")
        recorder.wait_for(after_idle + 2)
    finally:
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(timeout=WAIT_LIMIT)
    text = log_path.read_text()
    lines = text.splitlines()
    # One line per change of state, however many reports were made.
    assert [line.split("] ", 1)[1] for line in lines] == [
        f"started: checking every 0.1s, reporting to {recorder.url(ENV_ID)}",
        "activity: IDE in use",
        "report accepted",
        "activity: idle",
        "activity: SSH session open",
    ]
    assert all(request.authorization == f"Bearer {workspace.token}" for request in recorder.requests)
    assert workspace.token not in text


@pytest.mark.parametrize("interval", ["0", "-1", "abc", "1.2.3", ".", ""])
def test_a_bad_interval_falls_back_to_the_default(workspace: Workspace, interval: str) -> None:
    result = workspace.run(DEV8_AGENT_INTERVAL=interval)
    assert "checking every 60s" in result.stderr


def wait_for_text(path: Path, text: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never logged: {path.read_text()}"
        time.sleep(0.05)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- resource samples -------------------------------------------------------------------------------


@pytest.fixture
def process_tree() -> Iterator[Callable[[str], int]]:
    """Starts `/bin/sh -c SCRIPT` as a process tree's root; every tree ends with the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(script: str) -> int:
        process = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True)
        started.append(process)
        return process.pid

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT_LIMIT)


def sampled(workspace: Workspace, recorder: Recorder, root: int, **overrides: str) -> dict[str, Any]:
    """One report with samples on, measuring the tree under `root`: its JSON body."""
    settings = {"DEV8_AGENT_SAMPLES": "1", "DEV8_AGENT_ROOT_PID": str(root), "DEV8_AGENT_INTERVAL": "0.5"}
    result = workspace.run(**{**settings, **overrides})
    assert result.returncode == 0, result.stderr
    (request,) = recorder.requests[-1:]
    body: dict[str, Any] = json.loads(request.body)
    return body


def test_an_idle_workspace_still_reports_its_sample(
    workspace: Workspace, recorder: Recorder, process_tree: Callable[[str], int], tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    root = process_tree("exec sleep 60")  # a process that uses no CPU at all
    body = sampled(workspace, recorder, root, DEV8_AGENT_WORKSPACE=str(tree), DEV8_CPU_CORES="1")
    assert body["active"] is False  # no heartbeat, no SSH session: idle, but measured
    sample = body["sample"]
    assert set(sample) == {"cpu_percent", "memory_mb", "disk_mb"}
    assert sample["cpu_percent"] == 0.0
    assert 0 < sample["memory_mb"] < 100  # sleep's resident memory
    assert 3.0 <= sample["disk_mb"] < 3.5  # du: the 3 MiB file and the directories' blocks


def test_a_busy_tree_shows_cpu_and_its_descendants_memory(
    workspace: Workspace, recorder: Recorder, process_tree: Callable[[str], int], tmp_path: Path
) -> None:
    workspace.beat()
    # The root only waits; its child spins and a grandchild holds 150 MB: both below the root.
    held = tmp_path / "held"
    spin = "while :; do :; done"
    hold = (
        f"{sys.executable} -c 'import pathlib, time; b = bytearray(150 * 2**20); "
        f'pathlib.Path("{held}").touch(); time.sleep(60)\''
    )
    root = process_tree(f"(sh -c '{spin}') & ( {hold} ) & wait")
    deadline = time.monotonic() + WAIT_LIMIT
    while not held.exists():  # the memory is held before it is measured
        assert time.monotonic() < deadline, "the process never allocated its memory"
        time.sleep(0.05)
    body = sampled(workspace, recorder, root, DEV8_CPU_CORES="2")
    assert body["active"] is True
    sample = body["sample"]
    assert 10 < sample["cpu_percent"] <= 100  # one busy process of two cores: near 50
    assert sample["memory_mb"] >= 150
    assert "disk_mb" not in sample  # no working tree given: not measured


def test_the_cpu_percent_is_of_the_environments_cores(
    workspace: Workspace, recorder: Recorder, process_tree: Callable[[str], int]
) -> None:
    root = process_tree("while :; do :; done")
    one = sampled(workspace, recorder, root, DEV8_CPU_CORES="1")["sample"]["cpu_percent"]
    four = sampled(workspace, recorder, root, DEV8_CPU_CORES="4")["sample"]["cpu_percent"]
    # A process that can use one core uses at most a quarter of four. The agent reads the uptime,
    # then every process's ticks: on a loaded machine the lag between the two differs a little
    # from one sample to the next, a few percent of a core over the one-second span (seen: 25.5).
    assert four < one and four <= 25.0 + 1.5


def test_no_such_root_sends_the_activity_without_a_sample(workspace: Workspace, recorder: Recorder) -> None:
    body = sampled(workspace, recorder, 2**22 + 1)  # past pid_max's largest value: no such process
    assert body == {"active": False}


def test_samples_off_keeps_the_old_report(workspace: Workspace, recorder: Recorder) -> None:
    workspace.beat()
    assert workspace.run(DEV8_AGENT_SAMPLES="0").returncode == 0
    (request,) = recorder.requests
    assert request.body == "{}"


# --- what the workspace setup could not do --------------------------------------------------------------


def test_setup_failures_go_with_the_reports_until_one_is_accepted(
    workspace: Workspace, recorder: Recorder, tmp_path: Path
) -> None:
    report = tmp_path / "setup-report"
    report.write_text(
        "repository: fatal: repository 'https://github.com/a/b/' not found \\ \"quoted\"\n"
        "dotfiles: install.sh failed\nnot a step: ignored\n"
    )
    setup = [
        {"step": "repository", "detail": "fatal: repository 'https://github.com/a/b/' not found / 'quoted'"},
        {"step": "dotfiles", "detail": "install.sh failed"},
    ]
    # Idle and without samples, it still reports them (and says it is not active).
    recorder.status = 503
    assert workspace.run(DEV8_AGENT_SETUP_REPORT=str(report)).returncode == 1
    assert json.loads(recorder.requests[0].body) == {"active": False, "setup": setup}

    recorder.status = 200
    log_path = tmp_path / "agent.log"
    overrides = {"DEV8_AGENT_ONCE": None, "DEV8_AGENT_INTERVAL": "0.1", "DEV8_AGENT_SAMPLES": "1"}
    with log_path.open("w") as log:
        agent = subprocess.Popen(
            ["/bin/sh", str(AGENT)],
            env=merged(workspace.env, {**overrides, "DEV8_AGENT_SETUP_REPORT": str(report)}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        bodies = [json.loads(r.body) for r in recorder.wait_for(4)[1:]]
    finally:
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(timeout=WAIT_LIMIT)
    assert bodies[0]["setup"] == setup and bodies[0]["active"] is False and "sample" in bodies[0]
    assert all("setup" not in body for body in bodies[1:])  # accepted: not sent again
