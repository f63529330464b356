"""code-server as the local backend runs it: where the binary is found (the install script's cache,
DEV8_CODE_SERVER_BIN or PATH), its flags and first settings, and the environment it is given: a
small allow-list of the host's variables, not the host's whole environment (the host's own DEV8_*
secrets must not be readable from the workspace's terminal).

What the images' entrypoint starts beside code-server runs here too, in code-server's process
group so that it stops with it: the workspace setup (docker/base/dev8-workspace-setup), sshd
(local_ssh.py) and, when the spec carries an agent token (secure DEV8_AGENT_TOKEN) and
DEV8_ACTIVITY_URL, the activity agent (docker/base/dev8-activity-agent): the local path reports
activity the way production does. A process cannot join a group of another session, so a small
`sh -c` launcher leads the group: it runs the setup, starts the others, then execs code-server
(same pid). The token is in the agent's environment only, never on a command line and never in
code-server's environment (so not in the IDE's terminals).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from shared.adapters.compute import ide_password
from shared.agent_tokens import ACTIVITY_URL_VARIABLE, AGENT_TOKEN_VARIABLE
from shared.errors import PermanentBackendError
from shared.secrets import SNAPSHOT_PASSWORD_KEY
from shared.services.ports import ComputeSpec

CODE_SERVER_VERSION = "4.100.3"  # keep in step with scripts/install-code-server.sh
NOT_INSTALLED = "code-server is not installed: run scripts/install-code-server.sh or set DEV8_CODE_SERVER_BIN"

# The only host variables a workspace process inherits.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
# code-server reads these itself: PORT would override --bind-addr, HASHED_PASSWORD would replace the
# environment's password, the XDG dirs move its files. Only this module sets them.
CONTROLLED = frozenset({"PORT", "PASSWORD", "HASHED_PASSWORD", "XDG_DATA_HOME", "XDG_CACHE_HOME"})
FLAGS = (
    "--auth", "password",
    "--disable-telemetry", "--disable-update-check",  # no calls home
    "--disable-workspace-trust",  # the workspace is the user's own
    "--disable-getting-started-override",
)  # fmt: skip
# The activity agent the workspace images ship; repository-relative, like the rest of the local run.
ACTIVITY_AGENT = Path(__file__).resolve().parents[3] / "docker" / "base" / "dev8-activity-agent"
SHELL = "/bin/sh"
SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SNAPSHOT_AGENT = ACTIVITY_AGENT.with_name("dev8-snapshot-agent")
WORKSPACE_SETUP = ACTIVITY_AGENT.with_name("dev8-workspace-setup")
# The launcher leads each environment's process group: what the images' entrypoint does, in the
# same order. $1 the activity agent script (or -), $2 code-server's user-data dir, $3 the snapshot
# agent script (or -), $4 the compute directory (the agents' and the setup's files), the rest
# code-server's argv; DEV8_LAUNCH_SETUP is the workspace setup script, DEV8_LAUNCH_SSHD the
# script that runs the environment's sshd (unset: no SSH) on port DEV8_LAUNCH_SSH_PORT.
#   1. The workspace setup (docker/base/dev8-workspace-setup, the images' own): SSH keys, git,
#      GitHub access, the clone, dotfiles; given the user's secrets, not the IDE password or the
#      agents' credentials. Its failures go to $4/setup-report, which the activity agent passes on.
#   2. sshd, without any secret (local_ssh.py).
#   3. Each agent, with the environment minus the names in DEV8_AGENT_UNSET (the IDE password, the
#      user's secrets, both agents' credentials), plus its own credentials back (the snapshot
#      agent: the repository's password, and the agent token it reports with). The activity
#      agent's `--user-data-dir` lets a restarted host find it by its command line like
#      code-server; it counts connections to this environment's sshd as SSH sessions; its resource
#      samples measure this launcher's pid (code-server's, after the exec) and what descends from
#      it, not the host's init, and the working tree is the launcher's directory.
#   4. code-server replaces this shell (same pid, start time and group) without either credential.
LAUNCH = """\
activity=$1 user_data=$2 snapshots=$3 state=$4
shift 4
token=${DEV8_AGENT_TOKEN:-} restic_password=${DEV8_SNAPSHOT_PASSWORD:-}
report=$state/setup-report ssh_port=${DEV8_LAUNCH_SSH_PORT:-0}
(
  unset PASSWORD HASHED_PASSWORD DEV8_AGENT_TOKEN DEV8_SNAPSHOT_PASSWORD DEV8_AGENT_UNSET DEV8_LAUNCH_SSHD
  WORKSPACE_DIR=$PWD DEV8_STATE_DIR=$state DEV8_RUNTIME_DIR=$state/run DEV8_SETUP_REPORT=$report
  DEV8_AUTHORIZED_KEYS=$state/ssh/authorized_keys
  export WORKSPACE_DIR DEV8_STATE_DIR DEV8_RUNTIME_DIR DEV8_SETUP_REPORT DEV8_AUTHORIZED_KEYS
  exec bash "$DEV8_LAUNCH_SETUP"
) </dev/null || echo "[dev8] setup: the workspace setup failed; the IDE starts anyway" >&2
if [ -n "${DEV8_LAUNCH_SSHD:-}" ]; then
  (
    # shellcheck disable=SC2086 # split on purpose: a list of variable names
    unset $DEV8_AGENT_UNSET DEV8_AGENT_UNSET
    exec "$DEV8_LAUNCH_SSHD"
  ) </dev/null >>"$state/sshd.log" 2>&1 &
fi
if [ "$snapshots" != - ]; then
  (
    # shellcheck disable=SC2086 # split on purpose: a list of variable names
    unset $DEV8_AGENT_UNSET DEV8_AGENT_UNSET
    DEV8_SNAPSHOT_PASSWORD=$restic_password DEV8_AGENT_TOKEN=$token
    export DEV8_SNAPSHOT_PASSWORD DEV8_AGENT_TOKEN
    exec /bin/sh "$snapshots" run
  ) </dev/null >>"$state/snapshots.jsonl" 2>>"$state/snapshot-agent.log" &
  echo $! >"$state/snapshot-agent.pid"
fi
if [ "$activity" != - ]; then
  (
    # shellcheck disable=SC2086 # split on purpose: a list of variable names
    unset $DEV8_AGENT_UNSET DEV8_AGENT_UNSET
    DEV8_AGENT_TOKEN=$token CODE_SERVER_USER_DATA_DIR=$user_data DEV8_AGENT_SSH_PORT=$ssh_port
    DEV8_AGENT_ROOT_PID=$$ DEV8_AGENT_WORKSPACE=$PWD DEV8_AGENT_SETUP_REPORT=$report
    export DEV8_AGENT_TOKEN CODE_SERVER_USER_DATA_DIR DEV8_AGENT_SSH_PORT
    export DEV8_AGENT_ROOT_PID DEV8_AGENT_WORKSPACE DEV8_AGENT_SETUP_REPORT
    exec /bin/sh "$activity" --user-data-dir "$user_data"
  ) </dev/null &
fi
unset DEV8_AGENT_TOKEN DEV8_SNAPSHOT_PASSWORD DEV8_SNAPSHOT_REPOSITORY DEV8_AGENT_UNSET token restic_password
unset DEV8_LAUNCH_SETUP DEV8_LAUNCH_SSHD DEV8_LAUNCH_SSH_PORT
exec "$@"
"""
# Written once into a new user-data dir: VS Code's own calls home off, and the terminal does not
# show the IDE password to whatever runs in it.
USER_SETTINGS = {
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "workbench.enableExperiments": False,
    "workbench.settings.enableNaturalLanguageSearch": False,
    "npm.fetchOnlinePackageInfo": False,
    "terminal.integrated.env.linux": {"PASSWORD": None, "HASHED_PASSWORD": None},
}


def cache_root(cache_dir: str | None = None) -> Path:
    """Where the install scripts put the local backend's tools (DEV8_CACHE_DIR is their setting)."""
    return Path(cache_dir or os.environ.get("DEV8_CACHE_DIR") or str(Path.home() / ".cache" / "dev8"))


def cache_install_dir(cache_dir: str | None = None) -> Path:
    """Where scripts/install-code-server.sh installs."""
    return cache_root(cache_dir) / f"code-server-{CODE_SERVER_VERSION}"


def find_code_server(configured: str | None, cache_dir: str | None = None) -> str:
    """DEV8_CODE_SERVER_BIN, else the install script's cached binary, else `code-server` on PATH."""
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise PermanentBackendError(f"{NOT_INSTALLED} (DEV8_CODE_SERVER_BIN={configured} is not executable)")
    install = cache_install_dir(cache_dir)
    cached = install / "node_modules" / ".bin" / "code-server"
    # Only a finished install counts: the script writes its marker last.
    if (install / ".dev8-installed").is_file() and os.access(cached, os.X_OK):
        return str(cached)
    on_path = shutil.which("code-server")
    if on_path:
        return on_path
    raise PermanentBackendError(NOT_INSTALLED)


def prepare_directory(directory: Path) -> None:
    """An environment's compute directory: code-server's dirs, an empty config file (so code-server
    never writes one with a password of its own), first settings, and the environment's HOME."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("user-data/User", "extensions", "data", "cache", "home"):
        (directory / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    config = directory / "config.yaml"
    if not config.exists():
        config.write_text("")
    user_settings = directory / "user-data" / "User" / "settings.json"
    if not user_settings.exists():
        user_settings.write_text(json.dumps(USER_SETTINGS, indent=2))  # later, the user's own are kept


def process_environment(spec: ComputeSpec, password: str, directory: Path) -> dict[str, str]:
    environment = {name: os.environ[name] for name in INHERITED if name in os.environ}
    for values in (spec.environment_variables, spec.secure_environment):
        environment.update((name, value) for name, value in values.items() if name not in CONTROLLED)
    # The agents' alone: the activity agent's token, the snapshot repository's password.
    for name in (AGENT_TOKEN_VARIABLE, SNAPSHOT_PASSWORD_KEY):
        environment.pop(name, None)
    # A hash, as on ACI: given the plain value, code-server runs argon2 on every request (ide_password).
    environment[ide_password.VARIABLE] = ide_password.hashed(password)
    # code-server keeps its heartbeat and wrapper logs in $XDG_DATA_HOME, VS Code a device id in
    # $XDG_CACHE_HOME: per environment, not mixed in the host's home.
    environment["XDG_DATA_HOME"] = str(directory / "data")
    environment["XDG_CACHE_HOME"] = str(directory / "cache")
    # A home of its own, as a container has: the user's git config and dotfiles never touch the host's.
    environment["HOME"] = str(directory / "home")
    return environment


def launcher(
    command: list[str],
    environment: dict[str, str],
    spec: ComputeSpec,
    directory: Path,
    activity: tuple[Path, str] | None,
    snapshots: tuple[Path, dict[str, str]] | None,
    sshd: tuple[Path, int] | None,
) -> list[str]:
    """code-server's argv behind the launcher (LAUNCH), which sets the workspace up and starts sshd
    (its script and port) and the agents beside it, in its process group: the activity agent (its
    script and token) and the snapshot agent (its script and environment, the repository's
    password included); `environment` gains what they need."""
    environment["DEV8_LAUNCH_SETUP"] = str(WORKSPACE_SETUP)
    if sshd is not None:
        environment["DEV8_LAUNCH_SSHD"] = str(sshd[0])
        environment["DEV8_LAUNCH_SSH_PORT"] = str(sshd[1])
    if activity is not None:
        environment[AGENT_TOKEN_VARIABLE] = activity[1]
    if snapshots is not None:
        environment.update(snapshots[1])
    hidden = {ide_password.VARIABLE, AGENT_TOKEN_VARIABLE, SNAPSHOT_PASSWORD_KEY, *spec.secure_environment}
    environment["DEV8_AGENT_UNSET"] = " ".join(sorted(n for n in hidden if SHELL_NAME.fullmatch(n)))
    return [
        SHELL, "-c", LAUNCH, "dev8-launch",
        str(activity[0]) if activity else "-", str(directory / "user-data"),
        str(snapshots[0]) if snapshots else "-", str(directory),
        *command,
    ]  # fmt: skip


def activity_token(spec: ComputeSpec, agent: Path) -> str | None:
    """The agent's token when this environment reports activity (else None), once the agent
    can run here: without it an environment in use would be stopped as idle."""
    token = spec.secure_environment.get(AGENT_TOKEN_VARIABLE)
    url = spec.environment_variables.get(ACTIVITY_URL_VARIABLE) or spec.secure_environment.get(
        ACTIVITY_URL_VARIABLE
    )
    if not token or not url:
        return None
    if not agent.is_file():
        raise PermanentBackendError(f"the activity agent {agent} is missing")
    # The agent's PATH is the host's: PATH is inherited, and users may not set it.
    if not os.access(SHELL, os.X_OK) or shutil.which("curl", path=os.environ.get("PATH")) is None:
        raise PermanentBackendError("the activity agent needs /bin/sh and curl on PATH")
    return token
