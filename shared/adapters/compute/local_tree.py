"""The local backend's working tree, kept like ACI keeps it: on the "container's disk" (the compute
directory), never on the "share" (the workspace directory), which holds only the restic repository
the snapshot agent writes (docker/base/dev8-snapshot-agent, the same script as in the images).

A start restores the latest snapshot into a fresh tree before code-server opens it; a stop asks
the agent for a last snapshot (SIGTERM), waits for it with a deadline, then the tree is discarded,
as a stopped container's disk is. Environments made before snapshots (no repository password)
keep their tree in the workspace directory, as before.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from shared.adapters.compute.code_server import SNAPSHOT_AGENT
from shared.agent_tokens import AGENT_TOKEN_VARIABLE
from shared.domain.resources import SNAPSHOT_CONTROL, SNAPSHOT_REPOSITORY
from shared.errors import PermanentBackendError
from shared.secrets import SNAPSHOT_PASSWORD_KEY
from shared.services.ports import ComputeSpec

TREE = "workspace"  # below the compute directory
PID_FILE = "snapshot-agent.pid"
RESTORE_SECONDS = 600
NOT_INSTALLED = "restic is not installed: run scripts/install-restic.sh (make dev does)"


def snapshot_environment(spec: ComputeSpec, directory: Path) -> dict[str, str] | None:
    """What the snapshot agent is given, or None for an environment made before snapshots."""
    password = spec.secure_environment.get(SNAPSHOT_PASSWORD_KEY)
    if not password:
        return None
    policy = {
        name: value for name, value in spec.environment_variables.items() if name.startswith("DEV8_SNAPSHOT_")
    }
    token = spec.secure_environment.get(AGENT_TOKEN_VARIABLE)
    return {
        **policy,
        **({AGENT_TOKEN_VARIABLE: token} if token else {}),  # what it reports its snapshots with
        "DEV8_SNAPSHOT_REPOSITORY": str(Path(spec.workspace.location) / SNAPSHOT_REPOSITORY),
        "DEV8_SNAPSHOT_CONTROL": str(Path(spec.workspace.location) / SNAPSHOT_CONTROL),
        SNAPSHOT_PASSWORD_KEY: password,
        "DEV8_WORKSPACE_DIR": str(directory / TREE),
        "DEV8_SNAPSHOT_CACHE": str(directory / "cache" / "restic"),
    }


def prepare_tree(
    spec: ComputeSpec, directory: Path, environment: dict[str, str], agent: Path = SNAPSHOT_AGENT
) -> Path:
    """A fresh working tree holding the latest snapshot (or, on a first start, what the workspace
    directory held before snapshots existed). `environment` is the agent's (snapshot_environment)."""
    if shutil.which("restic") is None:
        raise PermanentBackendError(NOT_INSTALLED)
    tree = directory / TREE
    discard_tree(directory)  # what a crash left is not the truth: the repository is
    share = Path(spec.workspace.location)
    repository = share / SNAPSHOT_REPOSITORY
    if not (repository / "config").exists():
        earlier = [entry for entry in share.iterdir() if entry.name != SNAPSHOT_REPOSITORY]
        if earlier:  # a workspace from before snapshots: its files become the first tree
            shutil.copytree(
                share,
                tree,
                symlinks=True,
                ignore=lambda _, names: [SNAPSHOT_REPOSITORY] if SNAPSHOT_REPOSITORY in names else [],
            )
            return tree
    done = subprocess.run(  # noqa: S603  # a fixed argv
        ["/bin/sh", str(agent), "restore"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory / "data"), **environment},
        capture_output=True,
        text=True,
        timeout=RESTORE_SECONDS,
    )
    if done.returncode != 0:
        raise PermanentBackendError(f"the workspace could not be restored: {done.stderr.strip()[-300:]}")
    return tree


def last_snapshot(directory: Path, pgid: int | None, deadline_seconds: float) -> bool:
    """Ask the snapshot agent of a running environment for its last snapshot (SIGTERM) and wait
    for it to finish, at most `deadline_seconds`. False when there was no agent or it ran late."""
    try:
        pid = int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        if pgid is None or os.getpgid(pid) != pgid:
            return False  # not ours any more (a pid reused since)
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    ends = time.monotonic() + deadline_seconds
    while time.monotonic() < ends:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return True
        time.sleep(0.1)
    return False


def discard_tree(directory: Path) -> None:
    tree = directory / TREE
    if tree.is_symlink():
        tree.unlink()
    elif tree.exists():
        shutil.rmtree(tree)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
