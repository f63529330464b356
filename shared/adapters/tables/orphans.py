"""The OrphanLedger port on the index table's ORPHANS partition: RowKey = compute name,
`first_seen` = when the reconciler first saw it without a live record. Kept in the table, not in
memory, because Flex Consumption may recycle the timer's instance between two passes
(flex-consumption-plan, "Per-function scaling"), and a grace period counted in memory would then
never end."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.tables import writes
from shared.adapters.tables.client import Tables
from shared.adapters.tables.rows import utc

ORPHANS = "ORPHANS"  # statuses never take this name


class TableOrphanLedger:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._index = tables.index

    def orphan_sightings(self, names: Collection[str], now: datetime) -> dict[str, datetime]:
        """When each of `names` was first seen orphaned (`now` for a new one); rows of compute no
        longer orphaned are removed. One query plus a write per change."""
        wanted = set(names)
        seen: dict[str, datetime] = {}
        for row in self._tables.query(self._index, "PartitionKey eq @pk", {"pk": ORPHANS}):
            name = str(row["RowKey"])
            if name in wanted:
                seen[name] = utc(row["first_seen"])
            else:
                self.forget_orphan(name)
        for name in wanted - set(seen):
            self._tables.stats.add("writes")
            try:
                writes.create(self._index, {"PartitionKey": ORPHANS, "RowKey": name, "first_seen": now})
                seen[name] = now
            except ResourceExistsError:  # another pass recorded it first: its time stands
                recorded = self._tables.point(self._index, ORPHANS, name)
                seen[name] = utc(recorded["first_seen"]) if recorded is not None else now
        return seen

    def forget_orphan(self, name: str) -> None:
        self._tables.stats.add("writes")
        with contextlib.suppress(ResourceNotFoundError):
            writes.delete(self._index, ORPHANS, name)
