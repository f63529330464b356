"""The Azurite helper itself: starts, answers, stops its whole process group; skip vs fail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from devhost.azurite import answers
from tests.azurite import azurite_tables, require_azurite


def test_missing_azurite_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = tmp_path / "azurite-table"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm ci"):
        require_azurite(absent)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must not be skipped in CI"):
        require_azurite(absent)


def test_azurite_answers_while_open_and_is_gone_after(azurite: str) -> None:
    binary = require_azurite()
    with azurite_tables(binary) as connection_string:
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", connection_string).group(1))  # type: ignore[union-attr]
        assert connection_string != azurite  # its own port
        with TableServiceClient.from_connection_string(connection_string) as service:
            service.create_table("probe")
            assert [table.name for table in service.list_tables()] == ["probe"]
    assert not answers(port)


def test_persistent_azurite_keeps_tables_across_restarts(tmp_path: Path) -> None:
    from devhost.azurite import free_port, start

    binary = require_azurite()
    port = free_port()
    first = start(tmp_path, binary=binary, port=port, persist=True)
    try:
        with TableServiceClient.from_connection_string(first.connection_string) as service:
            service.create_table("kept")
    finally:
        first.stop()
    second = start(tmp_path, binary=binary, port=port, persist=True)
    try:
        with TableServiceClient.from_connection_string(second.connection_string) as service:
            assert [table.name for table in service.list_tables()] == ["kept"]
    finally:
        second.stop()
