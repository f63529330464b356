"""docker/base/dev8-workspace-setup with the real git against a git server on loopback
(tests/git_server.py: git http-backend behind TLS): a public repository is cloned, a private one
only with the token, which git's credential cache holds (no file, no command line, no log line)
and later git commands reach without it in their environment, as an SSH session's do; a failure
is one credential-free line of the report; dotfiles are cloned and installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import pids_mentioning
from tests.git_server import GIT, GitServer, git_server, make_repository
from tests.infra.tooling import ROOT

SETUP = ROOT / "docker" / "base" / "dev8-workspace-setup"
TOKEN = "ghp_dev8SetupTestToken0123456789abcdefXYZ"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    root = tmp_path_factory.mktemp("git-server")
    make_repository(root, "hello", {"README.md": "public hello\n"})
    make_repository(root, "secret", {"PLAN.md": "private plan\n", "src/main.py": "print('hi')\n"})
    make_repository(
        root,
        "dotfiles",
        {"install.sh": 'printf "installed by dotfiles" > "$HOME/.dotfiles-ran"\n', ".vimrc": ""},
    )
    with git_server(root, TOKEN, private={"secret"}) as running:
        yield running


@dataclass
class Workspace:
    home: Path
    tree: Path
    state: Path
    server: GitServer

    @property
    def report(self) -> Path:
        return self.state / "setup-report"

    def env(self, **values: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_SSL_CAINFO": str(self.server.ca_file),  # the run's CA: TLS is verified, not skipped
            **values,
        }

    def setup(self, **values: str) -> subprocess.CompletedProcess[str]:
        env = self.env(
            WORKSPACE_DIR=str(self.tree),
            DEV8_STATE_DIR=str(self.state),
            DEV8_RUNTIME_DIR=str(self.home / ".dev8"),
            DEV8_SETUP_REPORT=str(self.report),
            **values,
        )
        return subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=120)

    def git(self, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """git as an SSH session runs it: no token in its environment, GIT_TERMINAL_PROMPT off."""
        env = self.env(GIT_TERMINAL_PROMPT="0")
        return subprocess.run([GIT, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def cache_daemons(root: Path) -> list[int]:
    """git's credential-cache daemons with a socket under `root`."""
    return sorted(set(pids_mentioning("credential-cache--daemon")) & set(pids_mentioning(str(root))))


@pytest.fixture
def workspace(tmp_path: Path, server: GitServer) -> Iterator[Workspace]:
    home, tree, state = tmp_path / "home", tmp_path / "tree", tmp_path / "state"
    for directory in (home, tree, state):
        directory.mkdir()
    yield Workspace(home, tree, state, server)
    for pid in cache_daemons(tmp_path):
        os.kill(pid, signal.SIGTERM)


def files_holding(root: Path, text: str) -> list[Path]:
    return [
        p for p in root.rglob("*") if p.is_file() and not p.is_socket() and text.encode() in p.read_bytes()
    ]


def test_a_private_repository_is_cloned_with_the_token_the_cache_holds(
    workspace: Workspace, server: GitServer, tmp_path: Path
) -> None:
    done = workspace.setup(
        REPOSITORY_URL=server.url("secret"), GITHUB_TOKEN=TOKEN, GIT_TOKEN_HOSTS=server.host
    )
    assert done.returncode == 0, done.stderr
    assert (workspace.tree / "secret" / "PLAN.md").read_text() == "private plan\n"
    assert workspace.report.read_text() == ""
    assert TOKEN not in done.stdout + done.stderr
    assert files_holding(tmp_path, TOKEN) == []  # held in memory only
    (daemon,) = cache_daemons(tmp_path)
    assert TOKEN.encode() not in Path(f"/proc/{daemon}/cmdline").read_bytes()
    # The first request went without credentials and was refused; the retry had the token.
    attempts = [authorized for _, path, authorized in server.requests if path.startswith("/secret.git")]
    assert attempts[0] is False and attempts[-1] is True

    # Later git, with no token in its environment (an SSH session), reaches the private remote.
    fetched = workspace.git("fetch", "--quiet", "origin", cwd=workspace.tree / "secret")
    assert fetched.returncode == 0, fetched.stderr
    assert workspace.git("config", "user.name", cwd=workspace.tree).stdout.strip() == "Dev8 Developer"


def test_without_the_token_a_private_clone_fails_into_the_report_and_nothing_stops(
    workspace: Workspace, server: GitServer
) -> None:
    url = server.url("secret").replace("https://", f"https://x-access-token:{TOKEN}-wrong@")
    done = workspace.setup(REPOSITORY_URL=url, GITHUB_TOKEN=TOKEN)  # the token is not for this host
    assert done.returncode == 0, done.stderr
    assert not (workspace.tree / "secret").exists()
    (line,) = workspace.report.read_text().splitlines()
    assert line.startswith("repository: ") and "Authentication failed" in line
    assert TOKEN not in line and TOKEN not in done.stderr


def test_a_public_repository_needs_no_token_and_is_not_cloned_twice(
    workspace: Workspace, server: GitServer
) -> None:
    assert workspace.setup(REPOSITORY_URL=server.url("hello")).returncode == 0
    assert (workspace.tree / "hello" / "README.md").read_text() == "public hello\n"
    (workspace.tree / "hello" / "README.md").write_text("my change\n")
    assert workspace.setup(REPOSITORY_URL=server.url("hello")).returncode == 0
    assert (workspace.tree / "hello" / "README.md").read_text() == "my change\n"
    assert not (workspace.home / ".gitconfig").read_text().count("credential")  # no token: no helper


def test_dotfiles_are_cloned_and_installed(workspace: Workspace, server: GitServer) -> None:
    done = workspace.setup(DOTFILES_URL=server.url("dotfiles"), GIT_USER_NAME="Bo Ray")
    assert done.returncode == 0, done.stderr
    assert (workspace.home / ".dotfiles-ran").read_text() == "installed by dotfiles"
    assert workspace.git("config", "user.name", cwd=workspace.tree).stdout.strip() == "Bo Ray"
    shutil.rmtree(workspace.home / ".dotfiles")  # a new container's HOME
    missing = workspace.setup(DOTFILES_URL=server.url("no-such-dotfiles"))
    assert missing.returncode == 0
    assert workspace.report.read_text().startswith("dotfiles: ")
