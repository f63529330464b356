"""Workspace snapshots through the whole product (issue 11): the real host (`python -m devhost`),
the local backend with real code-server, the real snapshot agent and restic, and the API. The
working tree is on the "container's disk" (the compute directory); only the repository is on the
"share" (the workspace directory)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Api, DevHost, group_members, pids_mentioning, wait_until

SMALL_FILES = 20_000
BIG_FILE_BYTES = 50 * 1024 * 1024


def manifest(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` with its type, mode and content hash or link target."""
    found: dict[str, tuple[Any, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            info = path.lstat()
            key = str(path.relative_to(root))
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[key] = ("dir", mode)
            else:
                found[key] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def build_project(tree: Path, scratch: Path) -> None:
    """A project like a user's: links, modes, empty folders, a big file, many small ones, a venv
    and an npm install (of a package made here: no network)."""
    (tree / "bin").mkdir()
    script = tree / "bin" / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o755)
    (tree / "latest").symlink_to("bin/run.sh")
    (tree / "dangling").symlink_to("nowhere/at/all")
    (tree / "empty" / "nested").mkdir(parents=True)
    (tree / "private.txt").write_text("mine")
    (tree / "private.txt").chmod(0o600)
    with (tree / "data.bin").open("wb") as big:
        big.write(os.urandom(BIG_FILE_BYTES))
    for n in range(SMALL_FILES):
        folder = tree / "node_modules" / "many" / f"d{n // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:05d}.js").write_text(f"module.exports = {n};\n")
    subprocess.run([sys.executable, "-m", "venv", str(tree / ".venv")], check=True, timeout=300)
    package = scratch / "hello-dev8"
    package.mkdir(parents=True)
    (package / "package.json").write_text(
        '{"name": "hello-dev8", "version": "1.0.0", "bin": {"hello-dev8": "cli.js"}}\n'
    )
    (package / "cli.js").write_text("#!/usr/bin/env node\nconsole.log('hello');\n")
    npm = shutil.which("npm")
    assert npm, "npm is needed (make test installs node for Azurite)"
    packed = (
        subprocess.run(
            [npm, "pack", "--silent", str(package)], cwd=scratch, check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    (tree / "app").mkdir()
    (tree / "app" / "package.json").write_text('{"name": "app", "version": "0.0.0", "private": true}\n')
    subprocess.run(
        [npm, "install", "--offline", "--no-audit", "--no-fund", str(scratch / packed)],
        cwd=tree / "app",
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert (tree / "app" / "node_modules" / ".bin" / "hello-dev8").is_symlink()
    assert (tree / ".venv" / "bin" / "python").is_symlink()


def snapshots(api: Api, env_id: str) -> list[dict[str, Any]]:
    answer = api.request("GET", f"/environments/{env_id}/snapshots")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["snapshots"])


def take_snapshot(api: Api, env_id: str, timeout: float = 300) -> dict[str, Any]:
    """A manual snapshot, waited for until the agent has reported it."""
    before = {snap["id"] for snap in snapshots(api, env_id)}
    answer = api.request("POST", f"/environments/{env_id}/snapshots")
    assert answer.status_code == 202, answer.text
    fresh: list[dict[str, Any]] = []

    def listed() -> bool:
        fresh[:] = [s for s in snapshots(api, env_id) if s["id"] not in before and s["reason"] == "manual"]
        return bool(fresh)

    assert wait_until(listed, timeout), f"the manual snapshot was never listed: {snapshots(api, env_id)}"
    return fresh[0]


def events(api: Api, env_id: str) -> list[dict[str, Any]]:
    return list(api.request("GET", f"/environments/{env_id}/events").json()["events"])


def running(api: Api, name: str) -> str:
    env_id = api.create(name)["id"]
    api.wait_for(env_id, "RUNNING")
    return env_id


def test_a_real_project_survives_stop_and_start_byte_for_byte(
    devhost: DevHost, alice: Api, tmp_path: Path
) -> None:
    env_id = running(alice, "project")
    tree = devhost.working_tree(env_id)
    build_project(tree, tmp_path)
    before = manifest(tree)
    assert len(before) > SMALL_FILES

    first = take_snapshot(alice, env_id)
    assert first["files"] >= SMALL_FILES and first["bytes_added"] > 0
    (tree / "private.txt").write_text("edited after the snapshot")  # only the stop saves this
    before = manifest(tree)

    assert alice.command(env_id, "stop").status_code == 202
    alice.wait_for(env_id, "STOPPED")
    assert not tree.exists()  # the "container's disk" is gone with the compute
    note = next(e for e in events(alice, env_id) if e["from_status"] == e["to_status"] == "STOPPING")
    assert note["reason"].startswith("final snapshot ") and "taken" in note["reason"], note
    assert [s["reason"] for s in snapshots(alice, env_id)][:2] == ["stop", "manual"]

    assert alice.command(env_id, "start").status_code == 202
    alice.wait_for(env_id, "RUNNING")
    assert manifest(tree) == before

    # The share holds only restic's plain files and folders: nothing SMB could not store.
    for directory, dirs, files in os.walk(devhost.workspace_dir(env_id)):
        for name in dirs + files:
            mode = Path(directory, name).lstat().st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), Path(directory, name)


def test_a_crash_loses_at_most_what_came_after_the_last_snapshot_and_the_trail_says_so(
    devhost: DevHost, alice: Api
) -> None:
    env_id = running(alice, "crash")
    tree = devhost.working_tree(env_id)
    (tree / "saved.txt").write_text("in a snapshot")
    saved = take_snapshot(alice, env_id)
    (tree / "unsaved.txt").write_text("after the last snapshot")

    leaders = pids_mentioning(str(devhost.compute_dir(env_id)))
    assert leaders, "no process of the environment found"
    for pid in leaders:
        # A member may end between the listing and the kill (the agent's `sleep`, a leader already
        # killed with its group): gone is what the kill wanted.
        with contextlib.suppress(ProcessLookupError):
            for member in group_members(os.getpgid(pid)) or [pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
    assert wait_until(lambda: not pids_mentioning(str(devhost.compute_dir(env_id))), 30)

    # The stop finds no workspace to ask; the start restores the last snapshot and says why.
    assert alice.command(env_id, "stop").status_code == 202
    alice.wait_for(env_id, "STOPPED")
    assert alice.command(env_id, "start").status_code == 202
    alice.wait_for(env_id, "RUNNING")
    assert (tree / "saved.txt").read_text() == "in a snapshot"
    assert not (tree / "unsaved.txt").exists()
    trail = events(alice, env_id)
    assert trail[0]["reason"].startswith("running; the last session ended without a final snapshot"), trail[0]
    assert f"the working tree is snapshot {saved['id']}" in trail[0]["reason"]


def test_an_older_snapshot_is_restored_in_place_or_into_a_new_environment(
    devhost: DevHost, alice: Api, bob: Api
) -> None:
    env_id = running(alice, "versions")
    tree = devhost.working_tree(env_id)
    (tree / "version.txt").write_text("one")
    one = take_snapshot(alice, env_id)
    (tree / "version.txt").write_text("two")
    take_snapshot(alice, env_id)

    restore = f"/environments/{env_id}/snapshots/{one['id']}/restore"
    assert alice.request("POST", restore).status_code == 409  # RUNNING
    assert bob.request("POST", restore).status_code == 404
    assert alice.request("POST", f"/environments/{env_id}/snapshots/0badc0de/restore").status_code == 404
    alice.command(env_id, "stop")
    alice.wait_for(env_id, "STOPPED")
    assert alice.request("POST", f"/environments/{env_id}/snapshots").status_code == 409  # STOPPED
    assert alice.request("POST", restore).status_code == 200
    alice.command(env_id, "start")
    alice.wait_for(env_id, "RUNNING")
    assert (tree / "version.txt").read_text() == "one"

    made = alice.request("POST", restore, json={"new_environment": True})
    assert made.status_code == 201, made.text
    copy_id = made.json()["environment"]["id"]
    alice.wait_for(copy_id, "RUNNING")
    assert (devhost.working_tree(copy_id) / "version.txt").read_text() == "one"
    assert snapshots(alice, copy_id)  # its own agent reported the copied repository


@pytest.fixture(autouse=True)
def _clean(alice: Api) -> Any:
    yield
    from tests.e2e.harness import delete_everything

    delete_everything(alice)
