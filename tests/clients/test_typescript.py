"""The TypeScript client (clients/typescript): its generated files match the app, it type-checks,
and Node's own test runner drives the live local host through it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import TS_USER, need
from tests.e2e.harness import DevHost

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
BIN = PACKAGE / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def tools() -> None:
    missing = (
        [] if (BIN / "tsc").exists() else ["clients/typescript/node_modules (make setup runs npm ci there)"]
    )
    missing += [] if shutil.which("node") else ["node"]
    need(missing, "the TypeScript client tests")


def run(
    *command: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # fixed tools of the package
        list(command), cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_committed_document_is_the_apps(app_env: pytest.MonkeyPatch) -> None:
    import function_app
    from api import openapi

    function_app.create_app()
    committed = json.loads((PACKAGE / "openapi.json").read_text())
    assert committed == openapi.document(), "clients/typescript/openapi.json is stale: run `make client`"


def test_the_committed_types_are_what_the_generator_makes_of_it(tools: None, tmp_path: Path) -> None:
    script: str = json.loads((PACKAGE / "package.json").read_text())["scripts"]["generate"]
    args = shlex.split(script)
    args[args.index("--output") + 1] = str(tmp_path / "schema.ts")  # the same flags, another file
    made = run(str(BIN / args[0]), *args[1:])
    assert made.returncode == 0, made.stderr
    fresh = (tmp_path / "schema.ts").read_text()
    assert fresh == (PACKAGE / "src" / "schema.ts").read_text(), "src/schema.ts is stale: run `make client`"


def test_the_client_type_checks(tools: None) -> None:
    checked = run(str(BIN / "tsc"), "--noEmit")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_node_drives_the_live_host_through_the_client(tools: None, live_host: DevHost) -> None:
    built = run(str(BIN / "tsc"))  # into the package's build/, where node finds openapi-fetch
    assert built.returncode == 0, built.stdout + built.stderr
    env: dict[str, Any] = {**os.environ, "DEV8_API_URL": live_host.url, "DEV8_TOKEN": live_host.mint(TS_USER)}
    tested = run(
        "node", "--test", str(PACKAGE / "build" / "test" / "lifecycle.test.js"), env=env, timeout=900
    )
    report = tested.stdout + tested.stderr
    print(report)
    assert tested.returncode == 0, report
    assert "# pass 2" in report and "# skipped 0" in report and "# fail 0" in report
