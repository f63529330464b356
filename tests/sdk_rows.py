"""What the Table SDK's own reads return, as plain values: the yardstick the app's reads
(shared/adapters/tables/wire.py) are held to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.data.tables import EntityProperty

from shared.adapters.tables.rows import utc


def plain(value: Any) -> Any:
    """A property as the SDK reads it (Int64 wrapped, times a datetime subclass), as a plain value."""
    if isinstance(value, EntityProperty):
        value = value.value
    return utc(value) if isinstance(value, datetime) else value


def plain_row(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {name: plain(value) for name, value in entity.items()}
