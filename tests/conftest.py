"""Shared fixtures. Integration tests run against a real Azurite started once per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

from shared.store.tables import TableEnvironmentStore
from tests.azurite import azurite_tables, require_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Connection string of an in-memory Azurite table service (skip or fail when not installed)."""
    binary = require_azurite()
    with azurite_tables(binary) as connection_string:
        yield connection_string


@pytest.fixture
def store(azurite: str) -> Iterator[TableEnvironmentStore]:
    """A store on tables of its own (unique prefix), so tests never see each other's rows."""
    service = TableServiceClient.from_connection_string(azurite)
    table_store = TableEnvironmentStore(service, f"t{uuid.uuid4().hex[:12]}")
    table_store.ensure_tables()
    yield table_store
    for name in (table_store.environments_table, table_store.index_table):
        service.delete_table(name)
    service.close()
