"""The `dev8` command line (the console script `make setup` installs) against the live local host:
what a person sees, what a script gets from --json and the exit codes, and the API's own messages
shown plainly."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import CLI_USER
from tests.e2e.harness import DevHost

DEV8 = Path(sys.executable).with_name("dev8")  # the console script beside this venv's python


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    host: DevHost
    home: Path  # XDG_CONFIG_HOME: where `dev8 login` saves
    token: str | None

    def __call__(self, *args: str, token: str | None = None, timeout: float = 300) -> Ran:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEV8_")}
        env.update(XDG_CONFIG_HOME=str(self.home), COLUMNS="200", NO_COLOR="1")
        env["DEV8_API_URL"] = self.host.url
        if token or self.token:
            env["DEV8_TOKEN"] = token or self.token or ""
        done = subprocess.run(  # our own console script
            [str(DEV8), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def cli(live_host: DevHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    if not DEV8.exists():
        pytest.fail(f"{DEV8} is missing: `make setup` installs the dev8 console script", pytrace=False)
    yield Cli(live_host, tmp_path_factory.mktemp("cli-home"), live_host.mint(CLI_USER))


def test_login_saves_the_token_for_later_commands_and_refuses_a_bad_one(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad-token"
    bad.write_text("not-a-token\n")
    refused = Cli(cli.host, cli.home, None)("login", "--token-file", str(bad))
    assert refused.code == 3, refused
    assert "the bearer token is malformed (UNAUTHORIZED)" in refused.err
    assert "Not logged in" not in refused.err

    good = tmp_path / "token"
    good.write_text(cli.token + "\n")
    logged = Cli(cli.host, cli.home, None)("login", "--token-file", str(good))
    assert logged.code == 0, logged
    saved = cli.home / "dev8" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": cli.host.url, "token": cli.token}
    catalog = Cli(cli.host, cli.home, None)("templates", "--json")  # no DEV8_TOKEN: the saved one
    assert catalog.code == 0, catalog
    assert "node" in {t["name"] for t in catalog.json()["templates"]}
    assert Cli(cli.host, cli.home, None)("logout").code == 0
    unknown = Cli(cli.host, cli.home, None)("list")
    assert unknown.code == 3 and "Not logged in" in unknown.err


def test_a_lifecycle_from_the_command_line(cli: Cli) -> None:
    dotfiles = "https://github.com/example/dotfiles"
    made = cli("create", "cli-demo", "-t", "node", "-s", "small", "--dotfiles", dotfiles, "--wait", "--json")
    assert made.code == 0, made
    env = made.json()
    assert env["status"] == "RUNNING" and env["name"] == "cli-demo" and env["size"] == "small"
    assert env["dotfiles_url"] == dotfiles
    phases = [step["phase"] for step in env["progress"]]
    assert phases[0] == "workspace" and phases[-1] == "ide_answering", phases
    assert "Running" in made.err and "5/5" in made.err  # the progress bar's last frame
    env_id = env["id"]

    listed = cli("list", "--json")
    assert listed.code == 0 and env_id in {e["id"] for e in listed.json()}
    shown = cli("get", env_id)
    assert shown.code == 0 and env_id in shown.out and "ide_answering" in shown.out
    opened = cli("open", env_id, "--json")
    assert opened.code == 0 and opened.json()["password"] and opened.json()["vs_code_url"].startswith("http")
    human = cli("open", env_id)
    assert f"Password: {opened.json()['password']}" in human.out
    trail = cli("events", env_id, "--json")
    # Newest first; the setup's report (the dotfiles host does not resolve here) may come after RUNNING.
    reasons = [event["reason"] for event in trail.json()] if trail.code == 0 else []
    assert any(reason.startswith("running (workspace ") for reason in reasons), trail
    assert reasons[-1] == "created", reasons
    whole = cli("events", env_id, "--all", "--json")  # page by page: the same trail here (under 100)
    assert whole.code == 0 and [event["reason"] for event in whole.json()][-len(reasons) :] == reasons
    log = cli("logs", env_id, "--tail", "5")
    assert log.code == 0 and 0 < len(log.out.splitlines()) <= 5
    assert cli("snapshots", env_id, "--json").code == 0

    samples = cli("metrics", env_id, "--json")  # the agent's first report comes a second after start
    assert samples.code == 0 and samples.json()["hours"] == 1, samples
    refused_resize = cli("resize", env_id, "--size", "medium")
    assert refused_resize.code == 1 and "restart: true" in refused_resize.err
    assert "(here: --restart)" in refused_resize.err  # the API's words, with the option that does it
    resized = cli("resize", env_id, "--size", "medium", "--restart", "--wait", "--json")
    assert resized.code == 0, resized
    assert (resized.json()["status"], resized.json()["size"]) == ("RUNNING", "medium")
    assert cli("resize", env_id).code == 2  # nothing to change

    stopped = cli("stop", env_id, "--wait", "--json")
    assert stopped.code == 0 and stopped.json()["status"] == "STOPPED", stopped
    assert "Stopped" in stopped.err and "None" not in stopped.err  # no phases to count on the way down
    started = cli("start", env_id, "--wait", "--json")
    assert started.code == 0 and started.json()["status"] == "RUNNING", started
    assert next(s["phase"] for s in started.json()["progress"]) == "compute_requested"
    refused = cli("start", env_id)  # already running: nothing to do, and said so
    assert refused.code == 0 and "RUNNING" in refused.err
    deleted = cli("delete", env_id, "--wait", "--json")
    assert deleted.code == 0 and deleted.json() == {"id": env_id, "deleted": True}, deleted
    gone = cli("get", env_id)
    assert gone.code == 4 and "environment not found (NOT_FOUND)" in gone.err

    spent = cli("usage", "--json")  # the deleted one is still billed, and shown
    assert spent.code == 0, spent
    row = next(r for r in spent.json()["environments"] if r["environment_id"] == env_id)
    assert row["deleted"] is True and row["compute_seconds"] > 0 and row["cost"] > 0
    table = cli("usage")
    assert table.code == 0 and "(deleted)" in table.out and "total" in table.out
    exported = cli("export")
    assert exported.code == 0 and exported.json()["owner"] == CLI_USER
    held = next(e for e in exported.json()["environments"] if e["id"] == env_id)
    assert held["status"] == "DELETED" and held["events"][0]["to_status"] == "DELETED"
    assert opened.json()["password"] not in exported.out


def test_a_wait_that_ends_in_error_says_why_and_exits_5(cli: Cli) -> None:
    # A real failure: node refuses the option, so code-server exits while it starts.
    failed = cli("create", "broken", "--env", "NODE_OPTIONS=--no-such-node-flag", "--wait", "--json")
    assert failed.code == 5, failed
    assert "is in ERROR" in failed.err and "code-server exited during start" in failed.err
    assert failed.out == ""  # nothing a script could take for the environment


def test_refusals_are_the_apis_own_words_with_their_exit_codes(cli: Cli) -> None:
    unknown = cli("create", "x", "--template", "cobol")
    assert unknown.code == 1
    assert "unknown template 'cobol' (VALIDATION_ERROR)" in unknown.err and "template: one of" in unknown.err
    assert cli("get", "env-0000000000000000").code == 4
    assert cli("create", "x", "--env", "novalue").code == 2
    unreachable = cli("list", "--url", "http://127.0.0.1:9")
    assert unreachable.code == 7 and "cannot reach" in unreachable.err
    other = cli("get", "env-0000000000000000", token="Bearer-less")
    assert other.code == 3


def test_deleting_my_data_asks_first_then_leaves_nothing(cli: Cli) -> None:
    leaving = cli.host.mint("cli-leaving")
    made = cli("create", "short-lived", "--template", "node", "--size", "small", token=leaving)
    assert made.code == 0, made
    unsure = cli("delete-my-data", token=leaving)
    assert unsure.code == 2 and "--yes" in unsure.err
    assert cli("list", "--json", token=leaving).json() != []
    gone = cli("delete-my-data", "--yes", "--wait", "--json", token=leaving)
    assert gone.code == 0 and gone.json() == {"status": "deleting"}, gone
    assert cli("list", "--json", token=leaving).json() == []
    assert cli("export", token=leaving).json()["environments"] == []
    assert cli("list", "--json").code == 0  # the other user's session is untouched


def test_settings_snapshot_restores_and_the_retired_list_from_the_command_line(cli: Cli) -> None:
    made = cli("create", "keep-demo", "-t", "node", "-s", "small", "--wait", "--json")
    assert made.code == 0, made
    env_id = made.json()["id"]
    changed = cli("set", env_id, "--name", "kept", "--idle-timeout", "45", "--keep", "--json")
    assert changed.code == 0, changed
    assert (changed.json()["name"], changed.json()["idle_timeout_minutes"], changed.json()["keep"]) == (
        "kept",
        45,
        True,
    )
    assert cli("set", env_id).code == 2  # nothing to change
    refused = cli("set", env_id, "--idle-timeout", "1")
    assert (
        refused.code == 1
        and "idle_timeout_minutes: Input should be greater than or equal to 5" in refused.err
    )

    (cli.host.working_tree(env_id) / "kept.txt").write_text("kept\n")
    asked = cli("snapshots", env_id, "--take", "--json")
    assert asked.code == 0, asked
    deadline = time.monotonic() + 120
    while not (taken := [s for s in cli("snapshots", env_id, "--json").json() if s["files"] >= 1]):
        assert time.monotonic() < deadline, "no snapshot with the file"
        time.sleep(1)
    snapshot = taken[0]["id"]

    running = cli("restore", env_id, snapshot)  # a running environment restores only into a new one
    assert running.code == 1 and "stop it to restore a snapshot (INVALID_STATE)" in running.err
    copied = cli("restore", env_id, snapshot, "--new", "--wait", "--json")
    assert copied.code == 0, copied
    copy = copied.json()
    assert copy["id"] != env_id and copy["status"] == "RUNNING"
    assert (cli.host.working_tree(copy["id"]) / "kept.txt").read_text() == "kept\n"

    assert cli("stop", env_id, "--wait").code == 0
    planned = cli("restore", env_id, snapshot, "--json")
    assert (
        planned.code == 0
        and planned.json()["on"] == "next start"
        and planned.json()["snapshot"]["id"] == snapshot
    )
    said = cli("restore", env_id, snapshot)
    assert said.code == 0 and f"restores {snapshot} at its next start" in said.err

    listed = cli("retired", "--json")  # nothing retention retired here: the list, empty
    assert listed.code == 0 and listed.json() == []
    missing = cli("retired", "--restore", env_id)  # stopped, not retired
    assert missing.code == 4 and "(NOT_FOUND)" in missing.err
    for gone in (env_id, copy["id"]):
        assert cli("delete", gone, "--wait").code == 0
