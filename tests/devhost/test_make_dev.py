"""`python -m devhost` (what `make dev` runs) as a real process: banner, API, Ctrl-C, restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devhost.azurite import answers, connection_string, free_port
from tests.azurite import require_azurite

ROOT = Path(__file__).resolve().parents[2]


class DevHost:
    def __init__(self, data_dir: Path, table_port: int, **env: str):
        self.port = free_port()
        self.table_port = table_port
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEV8_")},
            "DEV8_COMPUTE_BACKEND": "simulated",
            "DEV8_SIMULATED_BOOT_POLLS": "0",
            "DEV8_LOCAL_DATA_DIR": str(data_dir),
            "DEV8_TABLES_CONNECTION": connection_string(table_port),
            **env,
        }
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        STARTED.append(self)

    def start(self) -> str:
        """Start it and return the dev token from its banner."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = re.search(r"export DEV8_TOKEN=(\S+)", line)
            if match:
                return match.group(1)
        self.stop(signal.SIGKILL)
        raise AssertionError("devhost printed no token:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=60)
        assert self.process.stdout is not None
        # Read through the text wrapper: it may already hold lines read ahead with the token.
        self.output.append(self.process.stdout.read())
        self.process.stdout.close()
        return self.process.returncode

    @property
    def text(self) -> str:
        return "".join(self.output)


STARTED: list[DevHost] = []


@pytest.fixture
def host_dir(tmp_path: Path) -> Iterator[Path]:
    require_azurite()
    yield tmp_path
    for host in STARTED:  # a failed test must not leave a host (and its Azurite) running
        if host.process is not None and host.process.poll() is None:
            host.stop(signal.SIGINT)
    STARTED.clear()


def api(host: DevHost, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{host.port}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def wait_for(client: httpx.Client, env_id: str, status: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        env = client.get(f"/environments/{env_id}").json()["environment"]
        if env["status"] == status:
            return env
        time.sleep(0.1)
    raise AssertionError(f"{env_id} never reached {status}: {env}")


def test_make_dev_serves_parks_on_ctrl_c_and_comes_back(host_dir: Path):
    table_port = free_port()
    host = DevHost(host_dir, table_port)
    token = host.start()
    with api(host, token) as client:
        assert client.get("/health").json() == {"status": "healthy"}
        created = client.post("/environments", json={"name": "demo", "template": "node"})
        assert created.status_code == 201
        env_id = created.json()["environment"]["id"]
        wait_for(client, env_id, "RUNNING")

    assert host.stop(signal.SIGINT) == 0
    assert "curl -s" in host.text and "/environments/<id>/connection" in host.text  # the banner
    assert "stopped 1 running environment(s)" in host.text
    assert not answers(table_port)  # the Azurite it started is gone too

    again = DevHost(host_dir, table_port)
    token = again.start()
    try:
        with api(again, token) as client:
            env = client.get(f"/environments/{env_id}").json()["environment"]
            assert env["status"] == "STOPPED"  # kept across the restart, on disk
            assert env["status_reason"] == "stopped because the local host was shut down"
            assert client.post(f"/environments/{env_id}/start").status_code == 202
            wait_for(client, env_id, "RUNNING")
    finally:
        assert again.stop(signal.SIGTERM) == 0


def test_a_host_killed_outright_leaves_nothing_running_after_restart(host_dir: Path):
    table_port = free_port()
    host = DevHost(host_dir, table_port)
    token = host.start()
    with api(host, token) as client:
        env_id = client.post("/environments", json={"name": "crash", "template": "go"}).json()["environment"][
            "id"
        ]
        wait_for(client, env_id, "RUNNING")
    host.stop(signal.SIGKILL)  # no parking: the record still says RUNNING, the compute is gone

    again = DevHost(host_dir, table_port)  # Azurite survived in its own session: reused
    token = again.start()
    try:
        with api(again, token) as client:
            wait_for(client, env_id, "STOPPED")  # the start-up reconciliation stopped it
            events = client.get(f"/environments/{env_id}/events").json()["events"]
            stop = next(e for e in events if e["actor"] == "reconciler")
            assert "compute" in stop["reason"]
            # The stop hand-off found no workspace to ask: the trail says no final snapshot was taken.
            note = next(e for e in events if e["from_status"] == e["to_status"] == "STOPPING")
            assert note["reason"].startswith("no final snapshot: the workspace was not running")
    finally:
        again.stop(signal.SIGINT)
    # The first host's Azurite was adopted by the second, which did not start it: end it here.
    for pid in _pids_listening(table_port):
        os.killpg(os.getpgid(pid), signal.SIGINT)


def _pids_listening(port: int) -> list[int]:
    """Processes with a listening socket on 127.0.0.1:port (read from /proc, no tools needed)."""
    inodes = set()
    hex_port = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[1].endswith(":" + hex_port) and fields[3] == "0A":
                    inodes.add(fields[9])
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.append(int(pid))
                    break
        except OSError:
            continue
    return pids
