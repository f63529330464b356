"""One live local host (`python -m devhost`, the local backend with real code-server) shared by
the client tests: the `dev8` command line and the TypeScript client drive it from the outside."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.harness import DevHost, missing_tools, shut_down

CLI_USER = "cli-user"
TS_USER = "ts-user"
WORKSPACE_USER = "workspace-user"


def need(missing: list[str], what: str) -> None:
    """Skip with a printed reason on a laptop; fail under CI=true."""
    if not missing:
        return
    reason = f"{what} needs " + "; ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}. These tests must not be skipped in CI.", pytrace=False)
    print(f"SKIP: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    need([m for m in missing_tools() if "hromium" not in m and "playwright" not in m], "the client tests")
    host = DevHost.start(tmp_path_factory.mktemp("clients-host"), compute_backend="local")
    print(f"devhost {host.url}, output in {host.log_path}")
    try:
        yield host
    finally:
        shut_down(host, (CLI_USER, TS_USER, WORKSPACE_USER))
