"""docker/base/dev8-snapshot-agent, the real script run by /bin/sh with the real restic: a working
tree of symlinks, modes, fifos, empty directories and many files comes back byte for byte, the
repository holds only regular files and directories (what SMB can store), a snapshot that changed
nothing is not kept, and the password never reaches a command line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.infra.tooling import ROOT

AGENT = ROOT / "docker" / "base" / "dev8-snapshot-agent"
PASSWORD = "correct-horse-battery-staple-0123456789"
WAIT_LIMIT = 60.0  # a bound so a broken agent cannot hang the run; not a timing assertion
TOKEN = "d8a.YWxpY2U.env-0123456789abcdef.tokentokentokentokentokentokentokentokento"


class Agent:
    def __init__(self, base: Path, workspace: Path) -> None:
        self.base = base
        self.repository = base / "share" / "snapshots"
        self.workspace = workspace
        (base / "home").mkdir(exist_ok=True)

    def env(self, workspace: Path | None = None, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.base / "home"),
            "DEV8_SNAPSHOT_REPOSITORY": str(self.repository),
            "DEV8_SNAPSHOT_PASSWORD": PASSWORD,
            "DEV8_WORKSPACE_DIR": str(workspace or self.workspace),
            **extra,
        }

    @contextmanager
    def running(self, control: Path, report_url: str) -> Iterator[subprocess.Popen[str]]:
        """`run` with a mailbox polled every second and reports to `report_url`; stopped with
        SIGTERM (as a container is) on the way out."""
        env = self.env(
            DEV8_SNAPSHOT_INTERVAL_SECONDS="3600",
            DEV8_SNAPSHOT_POLL_SECONDS="1",
            DEV8_SNAPSHOT_CONTROL=str(control),
            DEV8_SNAPSHOT_REPORT_URL=report_url,
            DEV8_AGENT_TOKEN=TOKEN,
        )
        process = subprocess.Popen(
            ["/bin/sh", str(AGENT), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=WAIT_LIMIT)

    def __call__(self, *args: str, workspace: Path | None = None, **extra: str) -> tuple[int, Any]:
        done = subprocess.run(
            ["/bin/sh", str(AGENT), *args],
            env=self.env(workspace, **extra),
            capture_output=True,
            text=True,
            timeout=WAIT_LIMIT,
        )
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return done.returncode, (lines[-1] if lines else done.stderr)


def build_tree(root: Path, small_files: int = 2000) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "empty" / "nested-empty").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hello')\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "private.key").write_text("not really\n")
    (root / "private.key").chmod(0o600)
    (root / "naïve name with spaces.txt").write_text("ünïcödé\n")
    (root / "big.bin").write_bytes(os.urandom(1024 * 1024))
    (root / "link-to-file").symlink_to("src/main.py")
    (root / "link-to-dir").symlink_to("src/pkg")
    (root / "dangling").symlink_to("nowhere/at/all")
    os.mkfifo(root / "a-fifo")
    many = root / "node_modules" / "dep"
    many.mkdir(parents=True)
    for number in range(small_files):
        (many / f"f{number:05d}.js").write_text(f"module.exports = {number};\n")
    (root / "node_modules" / ".bin").mkdir()
    (root / "node_modules" / ".bin" / "dep").symlink_to("../dep/f00000.js")


def manifest(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path below root: its type, permission bits, link target or content hash."""
    found: dict[str, tuple[Any, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            relative = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", stat.S_IMODE(info.st_mode))
            elif stat.S_ISFIFO(info.st_mode):
                found[relative] = ("fifo", stat.S_IMODE(info.st_mode))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[relative] = ("file", stat.S_IMODE(info.st_mode), digest)
    return found


def test_a_working_tree_comes_back_byte_for_byte_from_a_repository_of_plain_files(
    restic: str, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, tmp_path / "workspace")
    build_tree(agent.workspace)
    code, first = agent("snapshot", "interval")
    assert code == 0 and first["event"] == "snapshot" and first["reason"] == "interval"
    assert first["files"] >= 2000 and first["bytes_added"] > 1024 * 1024

    fresh = tmp_path / "fresh-disk"
    code, restored = agent("restore", workspace=fresh)
    assert (code, restored) == (0, {"event": "restored", "id": first["id"]})
    assert manifest(fresh) == manifest(agent.workspace)

    odd = [
        str(path)
        for path in agent.repository.rglob("*")
        if path.is_symlink() or not (path.is_file() or path.is_dir())
    ]
    assert odd == []  # only what an SMB share can hold


def test_only_snapshots_that_changed_something_are_kept(restic: str, tmp_path: Path) -> None:
    agent = Agent(tmp_path, tmp_path / "workspace")
    build_tree(agent.workspace, small_files=10)
    assert agent("snapshot", "interval")[1]["event"] == "snapshot"
    assert agent("snapshot", "interval")[1] == {"event": "unchanged", "reason": "interval"}
    (agent.workspace / "src" / "main.py").write_text("print('edited')\n")
    edited = agent("snapshot", "manual")[1]
    assert edited["event"] == "snapshot" and edited["reason"] == "manual"
    assert edited["bytes_added"] < 64 * 1024  # incremental: the edit, not the tree again
    listed = subprocess.run(
        [restic, "snapshots", "--json"],
        env={**agent.env(), "RESTIC_REPOSITORY": str(agent.repository), "RESTIC_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        check=True,
    )
    assert [set(s["tags"]) for s in json.loads(listed.stdout)] == [{"reason:interval"}, {"reason:manual"}]


def test_an_older_snapshot_can_be_restored_by_id(restic: str, tmp_path: Path) -> None:
    agent = Agent(tmp_path, tmp_path / "workspace")
    build_tree(agent.workspace, small_files=10)
    before = manifest(agent.workspace)
    older = agent("snapshot", "interval")[1]
    (agent.workspace / "run.sh").unlink()
    (agent.workspace / "new.txt").write_text("later\n")
    assert agent("snapshot", "interval")[1]["event"] == "snapshot"
    code, restored = agent("restore", older["id"], workspace=tmp_path / "back-then")
    assert (code, restored["id"]) == (0, older["id"])
    assert manifest(tmp_path / "back-then") == before


def test_first_boot_restores_nothing_and_a_used_tree_is_never_overwritten(
    restic: str, tmp_path: Path
) -> None:
    agent = Agent(tmp_path, tmp_path / "workspace")
    assert agent("restore") == (0, {"event": "empty"})
    (agent.workspace / "work.txt").write_text("unsaved\n")
    agent("snapshot", "interval")
    (agent.workspace / "work.txt").write_text("newer, not yet snapshotted\n")
    code, _ = agent("restore")
    assert code == 3
    assert (agent.workspace / "work.txt").read_text() == "newer, not yet snapshotted\n"


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("snapshot", "bogus"), {}),
        (("restore", "zz;rm -rf /"), {}),
        (("explode",), {}),
        (("snapshot", "interval"), {"DEV8_SNAPSHOT_PASSWORD": ""}),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    restic: str, tmp_path: Path, args: tuple[str, ...], extra: dict[str, str]
) -> None:
    agent = Agent(tmp_path, tmp_path / "workspace")
    agent.workspace.mkdir()
    code, _ = agent(*args, **extra)
    assert code == 2
    assert not agent.repository.exists()


def test_run_snapshots_on_its_interval_and_once_more_when_stopped(restic: str, tmp_path: Path) -> None:
    """The password is in restic's environment only: a `restic` on PATH that records its argv
    shows it never on a command line."""
    agent = Agent(tmp_path, tmp_path / "workspace")
    build_tree(agent.workspace, small_files=10)
    spy = tmp_path / "bin"
    spy.mkdir()
    argv_log = tmp_path / "argv.log"
    (spy / "restic").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec {restic} "$@"\n')
    (spy / "restic").chmod(0o755)
    env = agent.env(DEV8_SNAPSHOT_INTERVAL_SECONDS="1")
    env["PATH"] = f"{spy}:{env['PATH']}"
    process = subprocess.Popen(
        ["/bin/sh", str(AGENT), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline and not (argv_log.exists() and "backup" in argv_log.read_text()):
        time.sleep(0.2)
    (agent.workspace / "edited-before-stop.txt").write_text("keep me\n")
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0] == {**events[0], "event": "snapshot", "reason": "interval"}
    assert events[-1]["reason"] == "stop"  # one more on the way out (unchanged if an interval caught it)
    code, _ = agent("restore", workspace=tmp_path / "after-stop")
    assert code == 0 and (tmp_path / "after-stop" / "edited-before-stop.txt").read_text() == "keep me\n"
    assert PASSWORD not in argv_log.read_text()


def test_the_mailbox_is_answered_and_every_snapshot_is_reported(restic: str, tmp_path: Path) -> None:
    """While running, requests left on the share are done and answered; each snapshot, and the
    prune, is reported with restic's list to the report URL with the agent token (never on a
    command line); the report body parses as the API's SnapshotReport."""
    from shared.domain.snapshots import SnapshotReport
    from tests.recording_server import recording_server

    agent = Agent(tmp_path, tmp_path / "workspace")
    build_tree(agent.workspace, small_files=10)
    control = tmp_path / "share" / "control"
    control.mkdir(parents=True)
    with recording_server() as api:
        url = f"http://127.0.0.1:{api.port}/api/v1/environments/env-0123456789abcdef/snapshots/report"
        with agent.running(control, url):
            (control / "stop-1.request").write_text("stop")
            answer = wait_for_file(control / "stop-1.answer")
            first = json.loads(answer)
            assert (first["event"], first["reason"]) == ("snapshot", "stop") and len(first["id"]) == 8
            deadline = time.monotonic() + WAIT_LIMIT  # removed once answered
            while (control / "stop-1.request").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not (control / "stop-1.request").exists()
            (control / "manual-1.request").write_text("manual")
            deadline = time.monotonic() + WAIT_LIMIT  # done: the request goes, and no answer file stays
            while (control / "manual-1.request").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not (control / "manual-1.request").exists()
            (control / "prune.request").write_text("prune")
            assert json.loads(wait_for_file(control / "prune.answer")) == {"event": "pruned"}
            (control / "evil.request").write_text("rm -rf /")
            assert json.loads(wait_for_file(control / "evil.answer")) == {"event": "failed"}
            # The stop's snapshot, the manual request's outcome (nothing changed since) and the prune.
            reports = api.wait_for(3)
    assert all(r.authorization == f"Bearer {TOKEN}" for r in reports)
    assert all(r.path.endswith("/snapshots/report") for r in reports)
    parsed = [SnapshotReport.model_validate_json(r.body) for r in reports]
    assert parsed[0].event is not None and parsed[0].event.id == first["id"]
    assert [s.short_id for s in parsed[0].snapshots] == [first["id"]]
    assert parsed[1].event is not None and (
        parsed[1].event.event,
        parsed[1].event.reason,
        parsed[1].event.request,
    ) == ("unchanged", "manual", "manual-1")  # which request it answers
    assert parsed[0].event.request is None and parsed[2].event.request is None  # only a manual one
    assert [s.short_id for s in parsed[1].snapshots] == [first["id"]]
    assert parsed[2].event is not None and parsed[2].event.event == "pruned"
    assert len(reports) == 3  # an interval or a stop that changed nothing is not reported
    assert not (control / "manual-1.answer").exists()  # a manual snapshot's answer is its report


def test_a_manual_request_is_reported_whatever_came_of_it(restic: str, tmp_path: Path) -> None:
    """The user who asked learns the outcome even when there is nothing to save yet or the
    repository cannot be opened; such a report sends an empty list only when restic has none to
    give (the API keeps its list for these outcomes)."""
    from shared.domain.snapshots import SnapshotReport
    from tests.recording_server import recording_server

    agent = Agent(tmp_path, tmp_path / "workspace")
    assert agent("restore") == (0, {"event": "empty"})  # a first boot
    agent.repository.parent.mkdir(parents=True)
    agent.repository.write_text("a share that went wrong: not a folder\n")
    control = tmp_path / "share" / "control"
    control.mkdir()
    with recording_server() as api, agent.running(control, f"http://127.0.0.1:{api.port}/report"):
        (control / "manual-1.request").write_text("manual")  # nothing written since the boot
        api.wait_for(1)
        (agent.workspace / "new.txt").write_text("worth saving\n")
        (control / "manual-2.request").write_text("manual")  # a change, but no repository
        reports = api.wait_for(2)
    outcomes = [SnapshotReport.model_validate_json(r.body) for r in reports]
    assert [(o.event.event, o.event.reason, o.event.request) for o in outcomes if o.event] == [
        ("unchanged", "manual", "manual-1"),
        ("failed", "manual", "manual-2"),
    ]
    assert [o.snapshots for o in outcomes] == [[], []]


def wait_for_file(path: Path) -> str:
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def test_a_tree_that_did_not_change_is_not_scanned_again_and_any_change_is_seen(
    restic: str, tmp_path: Path
) -> None:
    """After a snapshot (or a restore) the agent looks for any status change in the tree before it
    runs restic: a new file, an edit, a chmod, a deletion, a new empty folder or link are each a
    change; nothing is "unchanged" without restic being run (a restic on PATH that records calls)."""
    agent = Agent(tmp_path, tmp_path / "workspace")
    build_tree(agent.workspace, small_files=10)
    calls = tmp_path / "calls.log"
    spy = tmp_path / "bin"
    spy.mkdir()
    (spy / "restic").write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexec {restic} "$@"\n')
    (spy / "restic").chmod(0o755)
    path = f"{spy}:{os.environ['PATH']}"
    assert agent("snapshot", "interval", PATH=path)[1]["event"] == "snapshot"
    calls.write_text("")
    assert agent("snapshot", "interval", PATH=path)[1] == {"event": "unchanged", "reason": "interval"}
    assert calls.read_text() == ""  # restic was not run at all
    tree = agent.workspace
    changes = [
        lambda: (tree / "new.txt").write_text("new"),
        lambda: (tree / "src" / "main.py").write_text("print('edited')\n"),
        lambda: (tree / "run.sh").chmod(0o700),
        lambda: (tree / "private.key").unlink(),
        lambda: (tree / "empty" / "another-empty").mkdir(),
        lambda: (tree / "src" / "new-link").symlink_to("main.py"),
    ]
    for change in changes:
        time.sleep(0.01)  # a change lands after the marker, as it does in use
        change()
        code, event = agent("snapshot", "interval", PATH=path)
        assert code == 0 and event["event"] == "snapshot", (changes.index(change), event)
    code, _ = agent("restore", workspace=tmp_path / "again", PATH=path)
    assert code == 0 and manifest(tmp_path / "again") == manifest(tree)
