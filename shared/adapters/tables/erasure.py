"""The Erasure port: an owner's rows in every table, and the anonymous usage totals kept after.

The totals live in the environments table under a partition no owner can have: owner keys are
percent-encoded (rows.owner_key), which never leaves a "!"."""

from __future__ import annotations

from collections.abc import Collection

from azure.data.tables import UpdateMode

from shared.adapters.tables import rows, writes
from shared.adapters.tables.client import Tables
from shared.adapters.tables.status_index import DIRECTORY
from shared.domain.environment import Status
from shared.domain.meter import MonthUsage

ANONYMOUS_USAGE = "!anonymous-usage"


class TableErasure:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def keep_anonymous_usage(self, erasure_id: str, month: str, usage: MonthUsage) -> None:
        row = {"PartitionKey": ANONYMOUS_USAGE, "RowKey": f"{month}:{erasure_id}", **usage.model_dump()}
        self._tables.stats.add("writes")
        writes.upsert(self._tables.environments, row, mode=UpdateMode.REPLACE)

    def anonymous_usage(self, month: str) -> MonthUsage:
        total = MonthUsage()
        for row in self._tables.query(
            self._tables.environments,
            "PartitionKey eq @pk and RowKey ge @from and RowKey lt @to",
            {"pk": ANONYMOUS_USAGE, "from": f"{month}:", "to": rows.after_prefix(f"{month}:")},
        ):
            total = total.plus(MonthUsage.model_validate({f: row[f] for f in MonthUsage.model_fields}))
        return total

    def erase(self, owner: str, environment_ids: Collection[str]) -> None:
        tables = self._tables
        for environment_id in environment_ids:
            # Blind deletes of every row the index may hold for the id (absent is no error).
            for partition in (*(status.value for status in Status), DIRECTORY):
                tables.stats.add("writes")
                writes.delete(tables.index, partition, rows.check_environment_id(environment_id))
            tables.delete_partition(tables.samples, rows.check_environment_id(environment_id))
        # The owner's partition last: while it stands, a re-run still finds the ids above.
        tables.delete_partition(tables.environments, rows.owner_key(owner))
