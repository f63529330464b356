"""Fixtures of the browser end-to-end tests: a real `python -m devhost` (local compute backend,
its own Azurite and data directory) per module, and headless Chromium with screenshots on failure.

Without Chromium, code-server, Azurite or Playwright these tests skip with a printed reason on a
laptop and fail under CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import DEV_USER, Api, Browser, DevHost, missing_tools, shut_down

OTHER_USER = "e2e-bob"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Lets fixtures see, at teardown, whether their test failed (for screenshots).
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def e2e_tools() -> None:
    missing = missing_tools()
    if not missing:
        return
    reason = "browser end-to-end tests need " + "; ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}. End-to-end tests must not be skipped in CI.", pytrace=False)
    print(f"SKIP: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def devhost(e2e_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    """The local host as `make dev` runs it, on free ports. At the end every environment is deleted
    through the API (the host's own Ctrl-C need not stop code-servers), then the host gets Ctrl-C,
    and nothing it started may be left running."""
    host = DevHost.start(tmp_path_factory.mktemp("devhost"), compute_backend="local")
    print(f"devhost {host.url}, data in {host.data_dir}, output in {host.log_path}")
    try:
        yield host
    finally:
        exit_code, left = shut_down(host, (DEV_USER, OTHER_USER))
        assert exit_code == 0, f"devhost did not stop cleanly on Ctrl-C (exit {exit_code}): {host.log_path}"
        assert not left, f"still running after the host stopped: pids {left}"


@pytest.fixture(scope="module")
def alice(devhost: DevHost) -> Iterator[Api]:
    """The dev user, with the token the host printed in its banner."""
    api = devhost.api(DEV_USER)
    yield api
    api.close()


@pytest.fixture(scope="module")
def bob(devhost: DevHost) -> Iterator[Api]:
    api = devhost.api(OTHER_USER)
    yield api
    api.close()


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    chromium = Browser(tmp_path)
    try:
        yield chromium
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            for shot in chromium.screenshot_all("failure"):
                print(f"screenshot: {shot}")
        chromium.close()
