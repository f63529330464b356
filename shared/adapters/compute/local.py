"""Local compute: each environment is a real code-server process on 127.0.0.1 and a port of its own.

Per environment, `{DEV8_LOCAL_DATA_DIR}/compute/{name}/` holds code-server's user-data and extensions
directories, an empty config file (so code-server never writes one with a password of its own into
the home directory), its log, and `state.json` (pid, process group, port, times: never a secret), from
which a restarted host finds its processes again.

The password reaches code-server only as an argon2 hash in its environment (HASHED_PASSWORD, as on
ACI: ide_password.py), never the command line
(code_server.py builds that environment and the launcher of the activity agent, which runs in the
same process group so that it stops with it). Each code-server leads its own process group
(start_new_session) and is stopped by ending the whole group and its descendants: killing only
the parent leaves the extension host, file watchers and terminal shells running.
"""

from __future__ import annotations

import builtins
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from shared.adapters.compute import ide_password, local_ssh, process_groups
from shared.adapters.compute.code_server import (
    ACTIVITY_AGENT,
    FLAGS,
    SNAPSHOT_AGENT,
    activity_token,
    find_code_server,
    launcher,
    prepare_directory,
    process_environment,
)
from shared.adapters.compute.local_logs import read_end
from shared.adapters.compute.local_tree import (
    TREE,
    discard_tree,
    last_snapshot,
    prepare_tree,
    snapshot_environment,
)
from shared.domain.logs import MAX_CHARS, LogSource, scrub
from shared.domain.progress import Phase
from shared.domain.resources import ComputeState
from shared.errors import PermanentBackendError, TransientBackendError
from shared.services.ports import ComputeSpec, ComputeStatus
from shared.settings import Settings

# Like an Azure container group name (what compute_name() makes), which also rules out path traversal.
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_STATE = "state.json"
_LOG = "code-server.log"
_TAIL_CHARS = 800


@dataclass(frozen=True, slots=True)
class _State:
    """What a (restarted) host needs to find an environment's process again. No secrets."""

    name: str
    environment_id: str
    workspace: str
    port: int
    pid: int | None  # None once stopped
    pgid: int | None
    identity: str | None  # boot id and start time of the leader: tells it from a reuse of its pid
    started_at: str
    stopped_at: str | None = None
    ssh: str | None = None  # the connection string of its sshd (none: no SSH on this host)


class LocalCompute:
    """A `ComputeBackend` of code-server processes on this machine; thread-safe."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        code_server_bin: str | None = None,
        *,
        cache_dir: str | None = None,
        boot_timeout_seconds: float = 120.0,
        stop_grace_seconds: float = 10.0,
        probe_timeout_seconds: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        activity_agent: str | os.PathLike[str] | None = None,
        stop_snapshot_seconds: float = 120.0,  # how long a stop waits for the last snapshot
    ) -> None:
        # Resolved once, so a later change of working directory cannot move the compute dirs.
        self.root = Path(data_dir).resolve() / "compute"
        self._configured_bin = code_server_bin
        self._cache_dir = cache_dir
        self._boot_timeout = boot_timeout_seconds
        self._stop_grace = stop_grace_seconds
        self._probe_timeout = probe_timeout_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._activity_agent = Path(activity_agent) if activity_agent is not None else ACTIVITY_AGENT
        self._snapshot_agent = SNAPSHOT_AGENT
        self._stop_snapshot_seconds = stop_snapshot_seconds
        # Direct connections only: a proxy from the environment must not sit between us and 127.0.0.1.
        self._http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        # In memory only: the processes this host started (to reap them and read exit codes), the
        # secret values to scrub from log tails, and which environments answered /healthz.
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._secrets: dict[str, tuple[str, ...]] = {}
        self._ready: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalCompute:
        return cls(settings.local_data_dir, settings.code_server_bin)

    def binary(self) -> str:
        """The code-server to run, or PermanentBackendError saying how to install it."""
        return find_code_server(self._configured_bin, self._cache_dir)

    # --- ComputeBackend ---------------------------------------------------------------------------

    def create(self, spec: ComputeSpec) -> ComputeStatus:
        with self._locked(spec.name):
            state = self._load(spec.name)
            if state is not None:
                return self._status(state)  # an existing one is left as it is: never a second process
            return self._launch(spec)

    def start(self, spec: ComputeSpec) -> ComputeStatus:
        with self._locked(spec.name):
            state = self._load(spec.name)
            if state is not None:
                current = self._status(state)
                if current.state in (ComputeState.RUNNING, ComputeState.PENDING):
                    return current
                self._end(state)  # what a failed start may have left behind
            return self._launch(spec)

    def status(self, name: str) -> ComputeStatus:
        with self._locked(name):
            state = self._load(name)
            if state is None:
                return ComputeStatus(name=name, state=ComputeState.ABSENT)
            return self._status(state)

    def stop(self, name: str) -> ComputeStatus:
        with self._locked(name):
            state = self._load(name)
            if state is None:
                return ComputeStatus(name=name, state=ComputeState.ABSENT)
            tree = self._dir(name) / TREE
            if state.pid is not None and state.workspace == str(tree):
                last_snapshot(self._dir(name), state.pgid, self._stop_snapshot_seconds)
            self._end(state)
            if state.workspace == str(tree):
                discard_tree(self._dir(name))  # as a stopped container's disk: the share has the snapshots
            if state.pid is not None:
                state = replace(state, pid=None, pgid=None, identity=None, stopped_at=self._now())
                self._save(state)
            return self._status(state)

    def delete(self, name: str) -> None:
        with self._locked(name):
            directory = self._dir(name)
            try:
                state = self._load(name)
            except PermanentBackendError:
                state = None  # unreadable state: the process scan below still finds its processes
            if state is not None:
                self._end(state)
            for pgid in self._groups_by_directory().get(name, ()):
                self._end_group(name, pgid, process_groups.identity(pgid) or "")
            self._forget(name)
            try:
                if directory.is_symlink():
                    directory.unlink()  # never follow a link out of the data dir
                else:
                    shutil.rmtree(directory)
            except FileNotFoundError:
                pass  # already gone is done
            except OSError as exc:
                raise TransientBackendError(f"compute {name} cannot be deleted: {exc.strerror}") from None

    def list(self) -> builtins.list[ComputeStatus]:
        statuses = []
        for name in self._names():
            try:
                statuses.append(self.status(name))
            except PermanentBackendError as exc:
                statuses.append(ComputeStatus(name=name, state=ComputeState.FAILED, detail=str(exc)))
        return statuses

    # --- reconciliation ---------------------------------------------------------------------------

    def reconcile_processes(self, known_names: Iterable[str]) -> builtins.list[str]:
        """End every code-server process group under this data dir that no known environment owns:
        those of names not in `known_names`, and strays of known ones that their state does not name
        (a start interrupted before its state was written). Their directories are kept. Returns the
        names whose processes were ended."""
        known = set(known_names)
        ended: set[str] = set()
        for name, pgids in self._groups_by_directory().items():
            with self._locked(name):
                state = self._load_quiet(name)
                owned = state.pgid if name in known and state is not None and self._alive(state) else None
                for pgid in pgids - {owned}:
                    self._end_group(name, pgid, process_groups.identity(pgid) or "")
                    ended.add(name)
                if name not in known and state is not None and state.pid is not None:
                    self._end(state)
                    self._save(replace(state, pid=None, pgid=None, identity=None, stopped_at=self._now()))
        return sorted(ended)

    # --- internals --------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        self._dir(name)  # refuses a bad name before anything else
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def logs(self, name: str, source: LogSource, tail: int) -> str:
        """The end of code-server's log for "ide" (the agents log beside it); no TLS sidecar runs
        locally. Enough of it for any `tail`: the caller cuts it to size."""
        return read_end(self._dir(name) / _LOG, 4 * MAX_CHARS) if source is LogSource.IDE else ""

    def _dir(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise PermanentBackendError(f"invalid compute name {name!r}: use 1-63 of [a-z0-9-]")
        return self.root / name

    def _names(self) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        names = (path.name for path in self.root.iterdir() if (path / _STATE).is_file())
        return sorted(name for name in names if _NAME.fullmatch(name))

    def _now(self) -> str:
        return self._clock().isoformat()

    def _load(self, name: str) -> _State | None:
        path = self._dir(name) / _STATE
        try:
            return _State(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise PermanentBackendError(f"compute {name}: state file {path} is unreadable ({exc})") from None

    def _load_quiet(self, name: str) -> _State | None:
        try:
            return self._load(name)
        except PermanentBackendError:
            return None

    def _save(self, state: _State) -> None:
        # Written whole then renamed, so a crash never leaves half a state file.
        path = self._dir(state.name) / _STATE
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(asdict(state), file, indent=2)
        os.replace(temporary, path)

    def _forget(self, name: str) -> None:
        self._children.pop(name, None)
        self._secrets.pop(name, None)
        self._ready.discard(name)

    def _launch(self, spec: ComputeSpec) -> ComputeStatus:
        binary = self.binary()
        password = spec.secure_environment.get("PASSWORD")
        if not password:
            raise PermanentBackendError("the spec has no PASSWORD: code-server must not run without one")
        workspace = Path(spec.workspace.location)
        if not workspace.is_dir():
            raise PermanentBackendError(f"workspace directory {workspace} does not exist")
        if not process_groups.PROC.joinpath("self", "stat").exists():
            raise PermanentBackendError("the local compute backend needs Linux (/proc)")
        agent_token = activity_token(spec, self._activity_agent)
        directory = self._prepare(spec.name)
        snapshots = snapshot_environment(spec, directory)
        if snapshots is not None:  # the tree lives on this "container's disk", restored from the share
            workspace = prepare_tree(spec, directory, snapshots, self._snapshot_agent)
        port = _free_port()
        log_path = directory / _LOG
        if log_path.exists():
            log_path.replace(directory / f"{_LOG}.1")  # the previous run's log, for a look after a restart
        command = [
            binary,
            "--bind-addr", f"127.0.0.1:{port}",
            "--config", str(directory / "config.yaml"),
            "--user-data-dir", str(directory / "user-data"),
            "--extensions-dir", str(directory / "extensions"),
            *FLAGS,
            str(workspace),
        ]  # fmt: skip
        environment = process_environment(spec, password, directory)
        activity = (self._activity_agent, agent_token) if agent_token is not None else None
        restic = (self._snapshot_agent, snapshots) if snapshots is not None else None
        sshd, ssh = local_ssh.server_for(self._cache_dir, directory, workspace, _free_port, spec)
        command = launcher(command, environment, spec, directory, activity, restic, sshd)
        self._forget(spec.name)
        try:
            with log_path.open("ab") as log:  # after the rotation above: new, or holding the SSH note
                child = subprocess.Popen(  # noqa: S603  # a fixed argv, no shell
                    command,
                    env=environment,
                    cwd=workspace,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, ended as a whole
                    close_fds=True,
                )
        except OSError as exc:
            reason = f"code-server cannot be started from {binary}: {exc.strerror}"
            raise PermanentBackendError(reason) from None
        # Read at once (a leader that already exited is an unreaped zombie: its start time is still there).
        identity = process_groups.identity(child.pid, include_zombie=True) or ""
        self._children[spec.name] = child
        hashed = environment[ide_password.VARIABLE]  # a verifier of the password: kept out of logs too
        self._secrets[spec.name] = (*(v for v in spec.secure_environment.values() if v), hashed)
        state = _State(
            name=spec.name,
            environment_id=spec.environment_id,
            workspace=str(workspace),
            port=port,
            pid=child.pid,
            pgid=child.pid,  # the leader of a new session leads a group of its own id
            identity=identity,
            started_at=self._now(),
            ssh=ssh,
        )
        self._save(state)
        return self._status(state)

    def _prepare(self, name: str) -> Path:
        directory = self._dir(name)
        prepare_directory(directory)
        return directory

    def _alive(self, state: _State) -> bool:
        child = self._children.get(state.name)
        if child is not None:
            child.poll()  # reap an exited leader we started, so it does not pass for alive
        return state.pid is not None and process_groups.is_alive(state.pid, state.identity or "")

    def _status(self, state: _State) -> ComputeStatus:
        def status(
            at: ComputeState, detail: str, url: str | None = None, phase: Phase | None = None
        ) -> ComputeStatus:
            return ComputeStatus(state.name, at, url, None, detail, state.environment_id, phase)

        if state.pid is None:
            return status(ComputeState.STOPPED, f"stopped at {state.stopped_at}")
        if not self._alive(state):
            return status(ComputeState.FAILED, self._failure(state))
        if self._answers(state.port):
            self._ready.add(state.name)
            url = f"http://127.0.0.1:{state.port}/?folder={quote(state.workspace)}"
            detail = f"code-server pid {state.pid} on port {state.port}"
            return ComputeStatus(
                state.name,
                ComputeState.RUNNING,
                url,
                state.ssh,
                detail,
                state.environment_id,
                Phase.IDE_ANSWERING,
            )
        waited = (self._clock() - datetime.fromisoformat(state.started_at)).total_seconds()
        if waited > self._boot_timeout:
            reason = f"code-server gave no answer on port {state.port} within {self._boot_timeout:.0f}s"
            return status(ComputeState.FAILED, f"{reason}; log tail: {self._log_tail(state.name)}")
        # The process runs (the tree was restored before it started): the IDE is booting.
        booting = f"code-server starting on port {state.port}"
        return status(ComputeState.PENDING, booting, None, Phase.CONTAINER_STARTED)

    def _failure(self, state: _State) -> str:
        child = self._children.get(state.name)
        code = child.returncode if child is not None and child.pid == state.pid else None
        tail = self._log_tail(state.name)
        if "EADDRINUSE" in tail:
            reason = f"port {state.port} was taken when code-server tried to listen on it; start again"
        elif state.name in self._ready:
            reason = "code-server stopped unexpectedly" + (f" (exit code {code})" if code is not None else "")
        elif code is not None:
            reason = f"code-server exited during start (exit code {code})"
        else:
            reason = "code-server is no longer running"
        return f"{reason}; log tail: {tail or '(empty log)'}"

    def _log_tail(self, name: str) -> str:
        text = scrub(read_end(self._dir(name) / _LOG, 4 * _TAIL_CHARS), list(self._secrets.get(name, ())))
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines)[-_TAIL_CHARS:]

    def _answers(self, port: int) -> bool:
        try:
            with self._http.open(f"http://127.0.0.1:{port}/healthz", timeout=self._probe_timeout) as answer:
                return int(answer.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _end(self, state: _State) -> None:
        if state.pgid is not None:
            self._end_group(state.name, state.pgid, state.identity or "")
        self._children.pop(state.name, None)
        self._ready.discard(state.name)

    def _end_group(self, name: str, pgid: int, leader_identity: str) -> None:
        child = self._children.get(name)
        reap = child.poll if child is not None and child.pid == pgid else None
        if not process_groups.terminate_group(
            pgid, leader_identity, grace_seconds=self._stop_grace, reap=reap
        ):
            raise TransientBackendError(f"compute {name}: processes of group {pgid} survived SIGKILL")

    def _groups_by_directory(self) -> dict[str, set[int]]:
        """Process groups of code-servers whose --user-data-dir lies under this backend's root."""
        prefix = f"{self.root}{os.sep}"
        groups: dict[str, set[int]] = {}
        for pid, argv in process_groups.find_by_argument(prefix).items():
            for flag, value in itertools.pairwise(argv):
                if flag == "--user-data-dir" and value.startswith(prefix):
                    name = value[len(prefix) :].split(os.sep, 1)[0]
                    pgid = process_groups.group_of(pid)
                    if _NAME.fullmatch(name) and pgid is not None:
                        groups.setdefault(name, set()).add(pgid)
        return groups


def _free_port() -> int:
    # The OS picks a port free now; a race with another binder shows up as EADDRINUSE in the log.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
