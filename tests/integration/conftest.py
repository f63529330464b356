"""Fixtures of the local compute tests: the real code-server, a data directory, a workspace and
backends whose processes are all ended after the test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.adapters.compute import code_server as installed
from shared.adapters.compute.code_server import find_code_server
from shared.adapters.compute.local import LocalCompute
from shared.adapters.workspaces.local import LocalWorkspaceStorage
from shared.domain.resources import workspace_name
from shared.errors import PermanentBackendError

ENV_A = "env-0123456789abcdef"  # as the tests name it


@pytest.fixture(scope="module")
def code_server() -> str:
    """The real code-server: DEV8_CODE_SERVER_BIN, the install script's cache, or PATH."""
    try:
        return find_code_server(os.environ.get("DEV8_CODE_SERVER_BIN"))
    except PermanentBackendError as exc:
        reason = f"{exc} (looked in {installed.cache_install_dir()})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}. The local compute tests must not be skipped in CI.", pytrace=False)
        print(f"SKIP: {reason}")
        pytest.skip(reason)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def workspace(data_dir: Path) -> str:
    return LocalWorkspaceStorage(data_dir).ensure(workspace_name(ENV_A), 20).location


@pytest.fixture
def backends(data_dir: Path) -> Iterator[Callable[..., LocalCompute]]:
    """Builds LocalCompute instances on the test's data dir; every process they started is ended."""
    built: list[LocalCompute] = []

    def build(binary: str | None, **options: object) -> LocalCompute:
        backend = LocalCompute(data_dir, binary, **options)  # type: ignore[arg-type]
        built.append(backend)
        return backend

    yield build
    for backend in built:
        backend.reconcile_processes([])
        for status in backend.list():
            backend.delete(status.name)
