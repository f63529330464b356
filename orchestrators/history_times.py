"""History event times read as what they are: ISO 8601.

An orchestrator is replayed from its whole history at every step, and the Durable SDK
(azure-functions-durable 1.7) builds each history event anew on every replay, parsing its
`Timestamp` with dateutil's general-purpose parser: about 30 µs an event here, a tenth of the
host's CPU in the 200-create burst (tests/benchmarks/concurrent_creates.py), and the same share
of the Functions worker's replays in Azure. The Durable extension writes those times as .NET
round-trip strings ("2025-08-08T11:29:34.8856378Z"; the history table's Timestamp column:
learn.microsoft.com/azure/azure-functions/durable/durable-functions-azure-storage-provider),
which `datetime.fromisoformat` reads (Python 3.11 takes the seven digits and the Z) in a
fraction of a microsecond. A string it refuses goes to dateutil, as every one did before.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

from dateutil.parser import parse as general_parse

# The module, not the class of the same name its package exports.
HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"


def parse(text: str, **options: Any) -> datetime:
    """The time an ISO 8601 string names (as dateutil reads it), else dateutil's reading."""
    if not options:
        try:
            return datetime.fromisoformat(text)
        except (TypeError, ValueError):
            pass
    parsed: datetime = general_parse(text, **options)
    return parsed


def read_fast() -> bool:
    """Have the SDK's history events parse their times with `parse`; False (and nothing changed)
    if this SDK no longer parses them with dateutil, so an upgrade is never silently patched."""
    module = importlib.import_module(HISTORY_EVENT_MODULE)
    current = getattr(module, "dt_parse", None)
    if current is parse:
        return True
    if current is not general_parse:
        return False
    module.dt_parse = parse  # type: ignore[attr-defined]  # the name the module parses with
    return True
