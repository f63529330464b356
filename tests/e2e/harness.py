"""Drives the product from the outside, as a user and the `make dev` command would: the local host as
a real `python -m devhost` process, its HTTP API, and the IDE in headless Chromium through Playwright.

Shared by the end-to-end tests and the benchmarks, so it imports nothing from pytest. Process checks
read /proc directly rather than through the product's own process helpers, so a bug there cannot
hide itself from the tests.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from devhost.azurite import BINARY as AZURITE_BINARY
from devhost.azurite import connection_string, free_port
from shared.auth import mint_token

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's, from scripts/install-browser.sh; never a downloaded build
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
TRANSITIONAL = frozenset({"CREATING", "STARTING", "STOPPING", "DELETING"})
DEV_USER = "dev-user"  # whom the host's banner token is for (devhost.__main__.DEV_USER)
# Generous bounds: a loaded 2-core machine is slow, and a bound only stops a broken run from hanging.
BOOT_TIMEOUT = 240.0
UI_TIMEOUT_MS = 120_000
# Variables that locate tools rather than configure the app: a run keeps them from its caller.
_KEPT_SETTINGS = ("DEV8_CODE_SERVER_BIN", "DEV8_CACHE_DIR")


class HostError(RuntimeError):
    """The local host did not come up (the message carries the tail of its output)."""


# --- the local host ---------------------------------------------------------------------------------


@dataclass
class DevHost:
    """A running `python -m devhost` with Azurite, data and settings of its own."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log_path: Path
    token: str  # the dev user's token, read from the banner
    jwt_secret: str
    tables_connection: str  # of the Azurite the host started
    issuer: str = "dev8-e2e"
    audience: str = "dev8-api"

    @classmethod
    def start(
        cls, workdir: Path, *, compute_backend: str = "local", settings: dict[str, str] | None = None
    ) -> DevHost:
        """Start the host on free ports with its data under `workdir`; it starts Azurite itself on
        the port of DEV8_TABLES_CONNECTION, since nothing answers there yet."""
        workdir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for attempt in range(3):  # a free port can be taken between probing and binding
            port, table_port = free_port(), free_port()
            data_dir = workdir / f"data-{attempt}"
            log_path = workdir / f"devhost-{attempt}.log"
            jwt_secret = secrets.token_urlsafe(32)
            env = {name: value for name, value in os.environ.items() if not name.startswith("DEV8_")}
            env.update({name: os.environ[name] for name in _KEPT_SETTINGS if name in os.environ})
            env.update(
                {
                    "PYTHONUNBUFFERED": "1",
                    "DEV8_JWT_SECRET": jwt_secret,
                    "DEV8_JWT_JWKS_URL": "",
                    "DEV8_JWT_ISSUER": "dev8-e2e",
                    "DEV8_JWT_AUDIENCE": "dev8-api",
                    "DEV8_TABLES_CONNECTION": connection_string(table_port),
                    "DEV8_TABLES_ENDPOINT": "",
                    "DEV8_TABLE_PREFIX": "e2e",
                    "DEV8_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "DEV8_COMPUTE_BACKEND": compute_backend,
                    "DEV8_WORKSPACE_BACKEND": "local",
                    "DEV8_LOCAL_DATA_DIR": str(data_dir),
                    "DEV8_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                    **(settings or {}),
                }
            )
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "devhost", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C meant for pytest must not reach it
                )
            host = cls._await_banner(process, port, data_dir, log_path, jwt_secret, env)
            if host is not None:
                return host
            last_error = log_path.read_text(errors="replace")[-3000:]
            if "address already in use" not in last_error.lower() and "EADDRINUSE" not in last_error:
                break
        raise HostError(f"python -m devhost did not come up; its output ends with:\n{last_error}")

    @classmethod
    def _await_banner(
        cls,
        process: subprocess.Popen[bytes],
        port: int,
        data_dir: Path,
        log_path: Path,
        jwt_secret: str,
        env: dict[str, str],
    ) -> DevHost | None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            output = log_path.read_text(errors="replace")
            token = re.search(r"export DEV8_TOKEN=(\S+)", output)
            if token and "Dev8 is running on" in output:
                url = f"http://127.0.0.1:{port}"
                tables = env["DEV8_TABLES_CONNECTION"]
                return cls(process, url, data_dir, log_path, token.group(1), jwt_secret, tables)
            if process.poll() is not None:
                break
            time.sleep(0.2)
        stop_process(process)
        return None

    def mint(self, user: str) -> str:
        """A token for another user, signed like the host's own."""
        return mint_token(self.jwt_secret, user, issuer=self.issuer, audience=self.audience)

    def api(self, user: str = DEV_USER) -> Api:
        return Api(self.url, self.token if user == DEV_USER else self.mint(user))

    def compute_dir(self, environment_id: str) -> Path:
        from shared.domain.resources import compute_name

        return self.data_dir / "compute" / compute_name(environment_id)

    def working_tree(self, environment_id: str) -> Path:
        """Where a running environment's files are: its compute directory (the "container's
        disk"); the workspace directory holds only their snapshots."""
        return self.compute_dir(environment_id) / "workspace"

    def workspace_dir(self, environment_id: str) -> Path:
        from shared.domain.resources import workspace_name

        return self.data_dir / "workspaces" / workspace_name(environment_id)

    def leftovers(self) -> list[int]:
        """Processes still running with this host's data directory on their command line: its
        Azurite and the leaders of its code-servers."""
        return pids_mentioning(str(self.data_dir))

    def stop(self) -> int | None:
        """Ctrl-C, as a person at `make dev` would; the host's exit code (None: it had to be killed)."""
        return stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 60) -> int | None:
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group we started (start_new_session)
        process.wait(timeout=10)
        return None


def delete_everything(api: Api, timeout: float = BOOT_TIMEOUT) -> None:
    """Delete every environment of the API's user and wait until each is gone (test clean-up)."""
    for env in api.list():
        settled = api.wait_settled(env["id"], timeout)
        if settled is not None:
            api.request("DELETE", f"/environments/{env['id']}")
    for env in api.list():
        api.wait_gone(env["id"], timeout)


def shut_down(host: DevHost, users: tuple[str, ...]) -> tuple[int, list[int]]:
    """Test clean-up: every environment of `users` deleted through the API (the host's own Ctrl-C
    need not stop code-servers), then Ctrl-C; returns the host's exit code and the pids it left
    running (already killed: only processes with this run's data directory in their arguments)."""
    try:
        for user in users:
            api = host.api(user)
            try:
                delete_everything(api)
            finally:
                api.close()
    finally:
        exit_code = host.stop()
        left = host.leftovers()
        kill_all(left)
    return exit_code, left


# --- the HTTP API -----------------------------------------------------------------------------------


@dataclass
class Api:
    """One user's view of the API."""

    base_url: str
    token: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            trust_env=False,  # straight to 127.0.0.1, never through a proxy from the environment
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def create(self, name: str, **body: Any) -> dict[str, Any]:
        answer = self.request("POST", "/environments", json={"name": name, "template": "node", **body})
        if answer.status_code != 201:
            raise AssertionError(f"create answered {answer.status_code}: {answer.text}")
        return dict(answer.json()["environment"])

    def get(self, environment_id: str) -> dict[str, Any] | None:
        """The environment, or None when the API answers 404."""
        answer = self.request("GET", f"/environments/{environment_id}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return dict(answer.json()["environment"])

    def list(self) -> list[dict[str, Any]]:
        answer = self.request("GET", "/environments")
        answer.raise_for_status()
        return list(answer.json()["environments"])

    def connection(self, environment_id: str) -> dict[str, Any]:
        answer = self.request("GET", f"/environments/{environment_id}/connection")
        if answer.status_code != 200:
            raise AssertionError(f"/connection answered {answer.status_code}: {answer.text}")
        return dict(answer.json())

    def command(self, environment_id: str, action: str) -> httpx.Response:
        if action == "delete":
            return self.request("DELETE", f"/environments/{environment_id}")
        return self.request("POST", f"/environments/{environment_id}/{action}")

    def wait_settled(self, environment_id: str, timeout: float = BOOT_TIMEOUT) -> dict[str, Any] | None:
        """Poll until the environment leaves its transitional status (None: it is gone)."""
        deadline = time.monotonic() + timeout
        while True:
            env = self.get(environment_id)
            if env is None or env["status"] not in TRANSITIONAL:
                return env
            if time.monotonic() > deadline:
                raise AssertionError(f"{environment_id} still {env['status']} after {timeout:.0f}s: {env}")
            time.sleep(0.25)

    def wait_for(self, environment_id: str, status: str, timeout: float = BOOT_TIMEOUT) -> dict[str, Any]:
        env = self.wait_settled(environment_id, timeout)
        if env is None or env["status"] != status:
            raise AssertionError(f"{environment_id} settled as {env and env['status']}, not {status}: {env}")
        return env

    def wait_gone(self, environment_id: str, timeout: float = BOOT_TIMEOUT) -> None:
        env = self.wait_settled(environment_id, timeout)
        if env is not None:
            raise AssertionError(f"{environment_id} was not deleted: {env}")

    def close(self) -> None:
        self.http.close()


# --- processes and ports (read from /proc, independently of the product) -----------------------------


def _stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a process, or None when it is gone."""
    try:
        raw = Path("/proc", pid, "stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[2])


def _live_pids() -> Iterator[str]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None and stat[0] not in ("Z", "X"):  # zombies hold nothing
                yield entry.name


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    return sorted(int(pid) for pid in _live_pids() if (_stat(pid) or ("", -1))[1] == pgid)


def pids_mentioning(marker: str) -> list[int]:
    """Live processes whose command line contains `marker`."""
    found = []
    for pid in _live_pids():
        try:
            argv = Path("/proc", pid, "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in argv:
            found.append(int(pid))
    return sorted(found)


def kill_all(pids: list[int]) -> None:
    """SIGKILL these processes and their groups (clean-up of what a run itself started)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def start_dev_server(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """A stand-in for a user's dev server (what `npm run dev` would be): serves `directory` on
    127.0.0.1:`port`, in a process group of its own, stopped with `stop_process`."""
    return subprocess.Popen(  # a fixed argv
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def missing_tools() -> list[str]:
    """What the browser end-to-end runs need and this machine lacks, each with how to get it."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -r requirements-dev.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (scripts/install-browser.sh)")
    from shared.adapters.compute.code_server import find_code_server
    from shared.errors import PermanentBackendError

    try:
        find_code_server(os.environ.get("DEV8_CODE_SERVER_BIN") or None)
    except PermanentBackendError:
        missing.append("code-server (scripts/install-code-server.sh)")
    if not AZURITE_BINARY.exists():
        missing.append(f"Azurite ({AZURITE_BINARY}: npm ci)")
    return missing


# --- the IDE in headless Chromium ------------------------------------------------------------------


class Browser:
    """Headless Debian Chromium; each page gets a fresh browser profile (--user-data-dir), so
    nothing (cookies, restored editors) carries over from an earlier page."""

    def __init__(self, screenshot_dir: Path):
        from playwright.sync_api import sync_playwright

        self.screenshot_dir = screenshot_dir
        self._manager = sync_playwright()
        self._playwright: Playwright = self._manager.start()
        self._contexts: list[BrowserContext] = []
        self._profiles: list[str] = []

    def new_page(self) -> Page:
        profile = tempfile.mkdtemp(prefix="dev8-chromium-")
        self._profiles.append(profile)
        context = self._playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=list(CHROMIUM_FLAGS),
            headless=True,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        self._contexts.append(context)
        return context.pages[0] if context.pages else context.new_page()

    def screenshot(self, page: Page, name: str) -> Path:
        path = self.screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    def screenshot_all(self, prefix: str) -> list[Path]:
        taken = []
        for index, context in enumerate(self._contexts):
            for number, page in enumerate(context.pages):
                with contextlib.suppress(Exception):  # a crashed page must not hide the real failure
                    taken.append(self.screenshot(page, f"{prefix}-{index}-{number}"))
        return taken

    def close_pages(self) -> None:
        for context in self._contexts:
            with contextlib.suppress(Exception):
                context.close()
        self._contexts.clear()
        for profile in self._profiles:
            shutil.rmtree(profile, ignore_errors=True)
        self._profiles.clear()

    def close(self) -> None:
        self.close_pages()
        self._manager.__exit__(None, None, None)


def log_in(page: Page, url: str, password: str) -> None:
    """Open the IDE's URL and sign in on code-server's login page."""
    page.goto(url)
    sign_in(page, password)


def sign_in(page: Page, password: str) -> None:
    """Submit the password on the code-server login page the page shows."""
    field = page.locator("input[type=password]")
    field.fill(password)
    field.press("Enter")


def wait_for_workbench(page: Page, folder: str | None = None) -> None:
    """The VS Code workbench is on screen (and, with `folder`, its Explorer shows that folder: the
    server side answered too)."""
    page.locator(".monaco-workbench").wait_for(state="visible")
    if folder is not None:
        header = page.locator(".explorer-folders-view, .explorer-viewlet .pane-header").filter(
            has_text=re.compile(re.escape(folder), re.IGNORECASE)
        )
        header.first.wait_for(state="visible")


EDITOR = ".editor-group-container.active .monaco-editor"  # the editor with the active tab


def editor_text(page: Page) -> str:
    """The text of the active editor as shown (Monaco renders spaces as no-break spaces)."""
    lines = page.locator(f"{EDITOR} .view-lines").first
    return lines.inner_text().replace("\u00a0", " ").strip()


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def _new_file_input(page: Page) -> Locator:
    """The Explorer's inline name box for a new file: from the Explorer's own "New File..." action,
    else (its title actions show only on hover, which can miss) from the command palette."""
    box = page.locator(".explorer-folders-view .monaco-inputbox input").first
    header = page.locator(".explorer-viewlet .pane-header").first
    with contextlib.suppress(Exception):
        header.hover(timeout=10_000)
        header.locator('.actions [aria-label^="New File"]').first.click(timeout=10_000)
        box.wait_for(state="visible", timeout=10_000)
        return box
    page.keyboard.press("Escape")
    return new_file_input_from_palette(page)


def new_file_input_from_palette(page: Page) -> Locator:
    """The same name box through the command palette's "File: New File..." (the Explorer's command)."""
    box = page.locator(".explorer-folders-view .monaco-inputbox input").first
    page.keyboard.press("F1")
    palette = page.locator(".quick-input-widget input")
    palette.fill(">File: New File...")
    row = page.locator(".quick-input-list .monaco-list-row", has_text=re.compile(r"^File: New File\.\.\."))
    row.first.click()
    box.wait_for(state="visible")
    return box


NAME_BOX_TRIES = 3


def create_file(page: Page, name: str, content: str) -> None:
    """Create `name` at the workspace root through the Explorer, type `content` into the editor
    and save with Ctrl+S (the caller checks that it reached the disk). A fresh profile's Welcome
    walkthrough opens a few seconds after the workbench and takes the focus, which closes a name
    box opened just before it: the box is asked for again then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(1, NAME_BOX_TRIES + 1):
        box = _new_file_input(page)
        try:
            box.fill(name, timeout=15_000)
            box.press("Enter", timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == NAME_BOX_TRIES:
                raise
            page.keyboard.press("Escape")
    page.locator(".tabs-container .tab", has_text=name).first.wait_for(state="visible")
    type_into_editor(page, content)
    save(page)


TYPING_TRIES = 3


def focus_editor(page: Page) -> None:
    """Click into the active editor and wait until it holds the focus (Monaco marks its node
    `focused`): the Explorer that has just created a file can take the focus back after the
    editor opened, and keys pressed then go to the Explorer."""
    page.locator(f"{EDITOR} .view-lines").first.click()
    page.locator(f"{EDITOR}.focused").first.wait_for(state="visible", timeout=10_000)


def type_into_editor(page: Page, content: str) -> None:
    """Type `content` as the active editor's whole text; typed again over whatever arrived when
    the focus moved away mid-way (seen in CI: the editor left empty, the keys gone elsewhere)."""
    for attempt in range(1, TYPING_TRIES + 1):
        focus_editor(page)
        if attempt > 1:
            page.keyboard.press("Control+a")  # what arrived is replaced by what is typed
        page.keyboard.type(content)
        if wait_until(lambda: editor_text(page) == content, 10 if attempt < TYPING_TRIES else 30):
            return
    raise AssertionError(f"the editor shows {editor_text(page)!r} after typing {content!r}")


def save(page: Page) -> None:
    focus_editor(page)
    page.keyboard.press("Control+s")


def open_file(page: Page, name: str) -> str:
    """Open `name` from the Explorer; the text its editor shows."""
    page.locator(".explorer-folders-view .monaco-list-row", has_text=name).first.click()
    page.locator(".tabs-container .tab.active", has_text=name).first.wait_for(state="visible")
    wait_until(lambda: bool(editor_text(page)), 30)
    return editor_text(page)
