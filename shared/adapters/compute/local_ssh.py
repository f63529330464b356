"""SSH on the local backend: an sshd of each environment's own, on a loopback port, configured like
the images' (docker/base/sshd_config: public keys only, no root, no passwords, local forwarding
only), with the keys of the user's SSH_PUBLIC_KEY secret (installed by dev8-workspace-setup, as in
the images). Its host key stays in the compute directory, so clients see the same key after a
stop and start.

sshd runs as an ordinary user, so it can only let that user in (as the images' sshd runs as dev8).
On a host run by a normal user, that is the host's user: the IDE's terminal runs as them too. On
a host run as root (a container, CI), sshd runs in a user namespace in which root is shown as the
unprivileged account `dev8` (scripts/install-sshd.sh makes it): root's own login is refused like
any other account's, and files written over SSH belong to the same owner as the IDE's. The
session sees HOME and WORKSPACE_DIR of the environment and the user's environment variables
(sshd's SetEnv; not the secrets, which sshd is never given).

Found in the install script's cache (scripts/install-sshd.sh: Debian's openssh-server unpacked),
DEV8_SSHD_BIN, or /usr/sbin/sshd; without one the environment runs without SSH.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.adapters.compute.code_server import ACTIVITY_AGENT, cache_root
from shared.domain.variables import session_variables

if TYPE_CHECKING:
    from shared.services.ports import ComputeSpec

SSHD_CONFIG = ACTIVITY_AGENT.with_name("sshd_config")  # the images' own
WORKSPACE_USER = "dev8"  # whom a root host's sessions run as, as in the images
# The image's settings that a loopback server of one environment must set otherwise.
_LOCAL = frozenset(
    {"port", "listenaddress", "addressfamily", "pidfile", "allowusers", "authorizedkeysfile", "strictmodes"}
)
_HOST_KEY = "ssh_host_ed25519_key"
KEYGEN = shutil.which("ssh-keygen")


@dataclass(frozen=True, slots=True)
class SshServer:
    """How this host runs an environment's sshd."""

    binary: str
    user: str  # the one account that may log in
    namespace: tuple[int, int] | None  # (uid, gid) a root host is shown as; None: run as it is
    library_path: str | None  # libraries unpacked beside an unpacked sshd

    def connection(self, port: int) -> str:
        return f"ssh -p {port} {self.user}@127.0.0.1"


def find_server(cache: str | None = None) -> tuple[SshServer | None, str]:
    """The sshd to run and who logs in, or None and why not (the environment runs without SSH)."""
    unpacked = cache_root(cache) / "openssh-server"  # scripts/install-sshd.sh
    library_path = None
    binary = os.environ.get("DEV8_SSHD_BIN")
    if not binary:
        if (unpacked / ".dev8-installed").is_file():
            binary = str(unpacked / "usr" / "sbin" / "sshd")
            libraries = [p for p in unpacked.glob("usr/lib/*-linux-gnu") if p.is_dir()]
            library_path = os.pathsep.join(str(p) for p in libraries) or None
        else:
            binary = "/usr/sbin/sshd"
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return None, "no sshd: run scripts/install-sshd.sh (make dev does) or set DEV8_SSHD_BIN"
    if KEYGEN is None:
        return None, "no ssh-keygen for the host key: install openssh-client"
    if os.getuid() != 0:
        return SshServer(binary, pwd.getpwuid(os.getuid()).pw_name, None, library_path), ""
    try:
        account = pwd.getpwnam(WORKSPACE_USER)
    except KeyError:
        return (
            None,
            f"no account {WORKSPACE_USER} for a root host's SSH sessions: run scripts/install-sshd.sh",
        )
    if shutil.which("unshare") is None:
        return None, "no unshare (util-linux) to run sshd as dev8"
    return SshServer(binary, WORKSPACE_USER, (account.pw_uid, account.pw_gid), library_path), ""


def server_for(
    cache: str | None,
    directory: Path,
    tree: Path,
    free_port: Callable[[], int],
    spec: ComputeSpec | None = None,
) -> tuple[tuple[Path, int] | None, str | None]:
    """The environment's sshd (its start script and port) and connection string, or none (said in
    code-server's log, beside which it would run) when this host has no sshd to run. The user's
    variables of `spec` are every session's too (never its secure values)."""
    server, why = find_server(cache)
    if server is None:
        _say(directory, f"off: {why}")
        return None, None
    port = free_port()
    variables = session_variables(spec.environment_variables) if spec is not None else {}
    script = prepare(server, directory, port, directory / "home", tree, variables)
    return (script, port), server.connection(port)


def setenv_values(variables: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """sshd_config's quoted "NAME=VALUE" words for `variables` (a backslash and a double quote
    escaped, as sshd's argument splitting reads them), and the names left out: a line break cannot
    be written in a config line. docker/base/entrypoint.sh writes the same words for the images."""
    words, left_out = [], []
    for name, value in variables.items():
        if "\n" in value or "\r" in value:
            left_out.append(name)
            continue
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        words.append(f'"{name}={escaped}"')
    return words, left_out


def prepare(
    server: SshServer,
    directory: Path,
    port: int,
    home: Path,
    tree: Path,
    variables: Mapping[str, str] | None = None,
) -> Path:
    """Write the environment's sshd config and host key (kept from the last start) under
    `directory`/ssh, and the script the launcher starts sshd with; returns that script."""
    ssh = directory / "ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    key = ssh / _HOST_KEY
    if not key.is_file():
        subprocess.run(  # noqa: S603  # a fixed argv
            [KEYGEN or "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dev8-host", "-f", str(key)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=30,
        )
    key.chmod(0o600)
    config = ssh / "sshd_config"
    # The platform's names win over a user's variable of the same name.
    words, left_out = setenv_values({**(variables or {}), "HOME": str(home), "WORKSPACE_DIR": str(tree)})
    config.write_text(_config(server, port, ssh / "authorized_keys", words))
    config.chmod(0o600)
    if left_out:
        _say(directory, f"not in SSH sessions (a line break in the value): {' '.join(left_out)}")
    command = [server.binary, "-D", "-e", "-f", str(config), "-h", str(key)]
    if server.namespace is not None:
        uid, gid = server.namespace
        command = ["unshare", "--user", f"--map-user={uid}", f"--map-group={gid}", "--", *command]
    if server.library_path:
        command = ["env", f"LD_LIBRARY_PATH={server.library_path}", *command]
    script = ssh / "run"
    script.write_text(f"#!/bin/sh\nexec {shlex.join(command)}\n")
    script.chmod(0o700)
    return script


def _config(server: SshServer, port: int, authorized_keys: Path, session: list[str]) -> str:
    kept = [
        line
        for line in SSHD_CONFIG.read_text().splitlines()
        if not line.strip() or line.lstrip().startswith("#") or line.split()[0].lower() not in _LOCAL
    ]
    local = [
        "# The environment's own, on this host (shared/adapters/compute/local_ssh.py):",
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        "PidFile none",
        f"AllowUsers {server.user}",
        f'AuthorizedKeysFile "{authorized_keys}"',
        # The keys file is the host's, 0600 in its 0700 directory, but its parents may be /tmp
        # (world-writable), which StrictModes refuses whoever owns them.
        "StrictModes no",
        " ".join(["SetEnv", *session]),
    ]
    return "\n".join([*kept, "", *local, ""])


def _say(directory: Path, line: str) -> None:
    """A line about SSH in code-server's log, beside which sshd runs (GET .../logs shows it)."""
    with (directory / "code-server.log").open("a") as log:
        log.write(f"[dev8] SSH: {line}\n")
