"""The backend factory: the adapter settings name, imported lazily, one instance per process."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters import factory
from shared.adapters.compute.local import LocalCompute
from shared.adapters.compute.simulated import SimulatedCompute
from shared.adapters.workspaces.local import LocalWorkspaceStorage
from shared.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for name in [name for name in os.environ if name.startswith("DEV8_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEV8_JWT_SECRET", "s" * 32)
    monkeypatch.setenv("DEV8_TABLES_CONNECTION", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DEV8_SECRETS_KEY", base64.b64encode(bytes(32)).decode())
    monkeypatch.setenv("DEV8_LOCAL_DATA_DIR", str(tmp_path))
    factory.clear_cache()
    yield monkeypatch
    factory.clear_cache()


def settings() -> Settings:
    return load_settings()


def test_simulated_compute_is_built_once(env: pytest.MonkeyPatch) -> None:
    first = factory.compute_backend(settings())
    assert isinstance(first, SimulatedCompute)
    assert factory.compute_backend(settings()) is first  # equal settings, same instance
    env.setenv("DEV8_SIMULATED_BOOT_POLLS", "5")
    assert factory.compute_backend(settings()) is not first


def test_local_workspace_storage_is_built_once(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    storage = factory.workspace_storage(settings())
    assert isinstance(storage, LocalWorkspaceStorage)
    assert storage.root == tmp_path.resolve() / "workspaces"
    assert factory.workspace_storage(settings()) is storage


def test_concurrent_first_calls_share_one_instance(env: pytest.MonkeyPatch) -> None:
    current = settings()
    barrier = threading.Barrier(8)
    built: list[object] = []

    def worker() -> None:
        barrier.wait()
        built.append(factory.compute_backend(current))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(instance) for instance in built}) == 1


def test_aci_compute_is_built_without_touching_azure(env: pytest.MonkeyPatch) -> None:
    env.setenv("DEV8_COMPUTE_BACKEND", "aci")
    env.setenv("DEV8_AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    env.setenv("DEV8_AZURE_RESOURCE_GROUP", "rg-dev8")
    env.setenv("DEV8_WORKSPACE_STORAGE_ACCOUNT", "dev8files")
    env.setenv("DEV8_IMAGE_TAG", "3f2a9c1d0e8b")
    from shared.adapters.compute.aci import AciCompute

    compute = factory.compute_backend(settings())
    assert isinstance(compute, AciCompute)  # credentials are lazy: no token is asked for yet
    assert compute._group.location == "eastus"
    assert factory.compute_backend(settings()) is compute


def test_local_compute_is_built_once(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("DEV8_COMPUTE_BACKEND", "local")
    compute = factory.compute_backend(settings())
    assert isinstance(compute, LocalCompute)
    assert compute.root == tmp_path.resolve() / "compute"
    assert factory.compute_backend(settings()) is compute


def test_azurefiles_is_built_without_touching_azure(env: pytest.MonkeyPatch) -> None:
    env.setenv("DEV8_WORKSPACE_BACKEND", "azurefiles")
    env.setenv("DEV8_WORKSPACE_STORAGE_ACCOUNT", "dev8files")
    env.setenv("DEV8_AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    env.setenv("DEV8_AZURE_RESOURCE_GROUP", "rg-dev8")
    from shared.adapters.workspaces.azurefiles import AzureFilesWorkspaces

    storage = factory.workspace_storage(settings())
    assert isinstance(storage, AzureFilesWorkspaces)
    assert storage.account_url == "https://dev8files.file.core.windows.net"


def test_adapters_are_imported_lazily() -> None:
    probe = (
        "import sys, shared.adapters.factory\n"
        "adapters = ('shared.adapters.compute.simulated', 'shared.adapters.workspaces.local',"
        " 'shared.adapters.compute.local', 'shared.adapters.compute.process_groups',"
        " 'shared.adapters.compute.aci', 'shared.adapters.workspaces.azurefiles',"
        " 'shared.adapters.azure_common')\n"
        "print([name for name in adapters if name in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
