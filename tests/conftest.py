"""Shared fixtures. Integration tests run against a real Azurite started once per session."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

from shared.adapters.tables.records import TableEnvironmentStore
from tests.azurite import azurite_tables, require_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Connection string of an in-memory Azurite table service (skip or fail when not installed)."""
    binary = require_azurite()
    with azurite_tables(binary) as connection_string:
        yield connection_string


@pytest.fixture(scope="session")
def restic() -> str:
    """The real restic (the workspace snapshot tool): fails under CI=true when missing."""
    found = shutil.which("restic")
    if found is None:
        reason = "restic is not installed; run scripts/install-restic.sh (make test does)"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(reason, pytrace=False)
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture
def store(azurite: str) -> Iterator[TableEnvironmentStore]:
    """A store on tables of its own (unique prefix), so tests never see each other's rows."""
    service = TableServiceClient.from_connection_string(azurite)
    table_store = TableEnvironmentStore(service, f"t{uuid.uuid4().hex[:12]}")
    table_store.ensure_tables()
    yield table_store
    for name in table_store.table_names:
        service.delete_table(name)
    service.close()


SECRETS_KEY = "ZGV2OC1sb2NhbC1vbmx5LXNlYWxpbmcta2V5LTMyYiE="
JWT_SECRET = "tests-only-jwt-secret-0123456789-abcdefghij"


@pytest.fixture
def app_env(azurite: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings for running the real app in-process: Azurite tables of this test's own, the
    simulated compute backend and local workspaces under tmp_path. Adjust with monkeypatch.setenv
    before the first use of `shared.wiring`."""
    from shared import wiring

    for name in [n for n in __import__("os").environ if n.startswith("DEV8_")]:
        monkeypatch.delenv(name)
    values = {
        "DEV8_JWT_SECRET": JWT_SECRET,
        "DEV8_JWT_ISSUER": "dev8-tests",
        "DEV8_JWT_AUDIENCE": "dev8-api",
        "DEV8_TABLES_CONNECTION": azurite,
        "DEV8_TABLE_PREFIX": f"t{uuid.uuid4().hex[:12]}",
        "DEV8_SECRETS_KEY": SECRETS_KEY,
        "DEV8_COMPUTE_BACKEND": "simulated",
        "DEV8_WORKSPACE_BACKEND": "local",
        "DEV8_LOCAL_DATA_DIR": str(tmp_path / "data"),
        "DEV8_SIMULATED_BOOT_POLLS": "2",
        "DEV8_SIMULATED_SEED": "7",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    yield monkeypatch
    wiring.reset()
