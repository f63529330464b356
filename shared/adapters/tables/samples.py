"""The ResourceSamples port on its own table: one partition per environment, one row per hour
(RowKey `YYYYMMDDHH`), one property per minute (`m00`..`m59`, the sample as compact JSON).

A sample is one Insert Or Merge of a single property: no read first, and a second sample in the
same minute replaces the first. A row holds at most 60 of the 252 properties an entity may have
(learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model,
"Property limitations"), and a day is 25 rows, so a series is one partition query. Expiry deletes
whole hours: what is older than the window's first hour."""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime

from azure.data.tables import UpdateMode

from shared.adapters.tables import rows, writes
from shared.adapters.tables.client import Tables
from shared.domain.samples import Point, Sample, minute_of

HOUR_KEY = "%Y%m%d%H"


def hour_key(at: datetime) -> str:
    return at.astimezone(UTC).strftime(HOUR_KEY)


class TableResourceSamples:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._table = tables.samples

    def add(self, environment_id: str, point: Point) -> None:
        at = minute_of(point.at)
        row = {
            "PartitionKey": rows.check_environment_id(environment_id),
            "RowKey": hour_key(at),
            f"m{at.minute:02d}": _encode(point.sample),
        }
        self._tables.stats.add("writes")
        writes.upsert(self._table, row, mode=UpdateMode.MERGE)

    def series(self, environment_id: str, since: datetime) -> builtins.list[Point]:
        since = minute_of(since)
        found = []
        for row in self._tables.query(
            self._table,
            "PartitionKey eq @pk and RowKey ge @first",
            {"pk": rows.check_environment_id(environment_id), "first": hour_key(since)},
        ):
            hour = datetime.strptime(str(row["RowKey"]), HOUR_KEY).replace(tzinfo=UTC)
            for name, value in row.items():
                if len(name) == 3 and name[0] == "m" and name[1:].isdigit():
                    at = hour.replace(minute=int(name[1:]))
                    if at >= since:
                        found.append(Point(at=at, sample=_decode(str(value))))
        return sorted(found, key=lambda point: point.at)

    def expire(self, before: datetime) -> int:
        old = self._tables.query(
            self._table, "RowKey lt @cutoff", {"cutoff": hour_key(before)}, select=["PartitionKey", "RowKey"]
        )
        return self._tables.delete_rows(self._table, old)

    def drop(self, environment_id: str) -> None:
        self._tables.delete_partition(self._table, rows.check_environment_id(environment_id))


def _encode(sample: Sample) -> str:
    return json.dumps([sample.cpu_percent, sample.memory_mb, sample.disk_mb], separators=(",", ":"))


def _decode(value: str) -> Sample:
    cpu, memory, disk = json.loads(value)
    disk_mb = None if disk is None else float(disk)
    return Sample(cpu_percent=float(cpu), memory_mb=float(memory), disk_mb=disk_mb)
