"""Azurite for tests: the local host's launcher, plus skip-or-fail when it is not installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devhost.azurite import BINARY, ROOT, AzuriteError, azurite_tables, connection_string, free_port

__all__ = ["BINARY", "AzuriteError", "azurite_tables", "connection_string", "free_port", "require_azurite"]


def require_azurite(binary: Path = BINARY) -> Path:
    """The azurite-table binary, or skip (locally) / fail (under CI=true) with the reason."""
    if binary.exists():
        return binary
    reason = f"Azurite is not installed ({binary} is missing); run `npm ci` in {ROOT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}. Integration tests must not be skipped in CI.", pytrace=False)
    print(f"SKIP: {reason}")
    pytest.skip(reason)
