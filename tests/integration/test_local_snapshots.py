"""The local backend's working tree as ACI keeps it (issue 11): on the compute directory (the
"container's disk"), saved by the real snapshot agent with the real restic into the workspace
directory (the "share"), discarded at stop and restored at start; a crash loses at most one
interval."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shared.adapters.compute.local import LocalCompute
from shared.adapters.compute.local_tree import TREE
from shared.domain.resources import SNAPSHOT_REPOSITORY, ComputeState
from shared.secrets import SNAPSHOT_PASSWORD_KEY
from shared.services.ports import ComputeSpec
from tests.infra.test_snapshot_agent import build_tree, manifest
from tests.integration.test_local_compute import alive, make_spec, settled, wait_until

WAIT_LIMIT = 120.0  # bounds, not timing assertions


def snapshotting(workspace_dir: str, interval: str = "600") -> ComputeSpec:
    """A spec as the service makes them now: with the repository's password and the policy."""
    spec = make_spec(workspace_dir, DEV8_SNAPSHOT_INTERVAL_SECONDS=interval)
    secure = {**spec.secure_environment, SNAPSHOT_PASSWORD_KEY: secrets.token_urlsafe(18)}
    return replace(spec, secure_environment=secure)


def running(backend: LocalCompute, spec: ComputeSpec, start: Callable[[ComputeSpec], object]) -> Path:
    start(spec)
    status = wait_until(backend, spec.name, settled, WAIT_LIMIT)
    assert status.state is ComputeState.RUNNING, status.detail
    return backend.root / spec.name / TREE


def events(backend: LocalCompute, spec: ComputeSpec) -> list[str]:
    log = backend.root / spec.name / "snapshots.jsonl"
    return log.read_text().splitlines() if log.exists() else []


def test_the_tree_survives_stop_and_start_through_snapshots_only(
    restic: str, code_server: str, backends: Callable[..., LocalCompute], workspace: str
) -> None:
    backend = backends(code_server)
    spec = snapshotting(workspace)
    tree = running(backend, spec, backend.create)
    assert tree.is_dir() and Path(workspace) != tree
    build_tree(tree, small_files=500)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tree / ".venv")], check=True)
    before = manifest(tree)

    backend.stop(spec.name)
    assert backend.status(spec.name).state is ComputeState.STOPPED
    assert not tree.exists()  # the "container's disk" is gone; the share has the snapshot
    assert any('"reason":"stop"' in line for line in events(backend, spec))
    stored = list((Path(workspace) / SNAPSHOT_REPOSITORY).rglob("*"))
    assert (
        stored and all(p.is_file() or p.is_dir() for p in stored) and not any(p.is_symlink() for p in stored)
    )

    tree = running(backend, spec, backend.start)
    assert manifest(tree) == before  # symlinks, modes, fifos, empty dirs, the venv: byte for byte
    assert (tree / ".venv" / "bin" / "python").is_symlink()


def test_a_crash_loses_at_most_one_interval(
    restic: str, code_server: str, backends: Callable[..., LocalCompute], workspace: str
) -> None:
    backend = backends(code_server)
    spec = snapshotting(workspace, interval="1")
    tree = running(backend, spec, backend.create)
    seen = len(events(backend, spec))
    (tree / "saved.txt").write_text("in a snapshot\n")
    # The second pass after the write began after it, so the file is in the latest snapshot.
    deadline = time.monotonic() + WAIT_LIMIT
    while len(events(backend, spec)) < seen + 2:
        assert time.monotonic() < deadline, "the agent took no interval snapshot"
        time.sleep(0.2)
    state = backend.root / spec.name / "state.json"
    pgid = int(json.loads(state.read_text())["pgid"])
    os.killpg(pgid, signal.SIGKILL)  # the machine dies: no last snapshot
    deadline = time.monotonic() + WAIT_LIMIT
    while alive(pgid):
        assert time.monotonic() < deadline
        time.sleep(0.1)

    tree = running(backend, spec, backend.start)
    assert (tree / "saved.txt").read_text() == "in a snapshot\n"


def test_a_workspace_from_before_snapshots_becomes_the_first_tree(
    restic: str, code_server: str, backends: Callable[..., LocalCompute], workspace: str
) -> None:
    (Path(workspace) / "old-work.txt").write_text("made before snapshots\n")
    backend = backends(code_server)
    spec = snapshotting(workspace)
    tree = running(backend, spec, backend.create)
    assert (tree / "old-work.txt").read_text() == "made before snapshots\n"
    backend.stop(spec.name)
    (Path(workspace) / "old-work.txt").unlink()  # from now on the repository is the truth
    tree = running(backend, spec, backend.start)
    assert (tree / "old-work.txt").read_text() == "made before snapshots\n"
