"""Table rows <-> domain records: keys, JSON columns, UTC datetimes. No I/O here.

Row layout (see DESIGN.md and shared/adapters/tables/records.py): one partition per owner holding
`env:{id}`, `evt:{id}:{inverted version}`, `idem:{sha256(key)}` and `usage`; a separate status
index table keyed (status, id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, get_args, get_origin
from urllib.parse import quote

from pydantic import BaseModel

from shared.domain.environment import Actor, AuditEvent, Environment, Status
from shared.domain.quota import Usage
from shared.services.ports import IdempotencyRecord, IndexEntry

Row = dict[str, Any]

ENV_PREFIX = "env:"
EVENT_PREFIX = "evt:"
IDEMPOTENCY_PREFIX = "idem:"
USAGE_ROW = "usage"
# Newest-first ordering of audit events: RowKey holds INVERT - version, zero padded.
INVERT = 10**12
# Characters Azure Tables forbids in PartitionKey/RowKey ("Characters disallowed in key fields":
# learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model).
_FORBIDDEN_IN_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
# Key size limit is 1 KiB; longer owners are hashed under a prefix `quote` can never produce.
_MAX_OWNER_KEY = 512
_ENVIRONMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A string property holds at most 64 KiB of UTF-16; 16k code points fit even if all are astral.
_CHUNK = 16_000
# The model field `id` is stored as `environment_id` (some table APIs reserve `id`).
_COLUMN = {"id": "environment_id"}
_JSON_FIELDS = frozenset(
    name
    for name, info in Environment.model_fields.items()
    if get_origin(info.annotation) in (list, dict)
    or any(isinstance(arg, type) and issubclass(arg, BaseModel) for arg in get_args(info.annotation))
)  # lists, maps and nested models (`X | None`): JSON text columns


def owner_key(owner: str) -> str:
    """A legal PartitionKey for an owner (the JWT `sub`), distinct for distinct owners."""
    if not owner:
        raise ValueError("owner must not be empty")
    key = quote(owner, safe="")
    # `quote` leaves only unreserved ASCII; this guards the invariant should that ever change.
    key = _FORBIDDEN_IN_KEY.sub(lambda found: f"%{ord(found.group()):02X}", key)
    if len(key) > _MAX_OWNER_KEY:
        key = "%~" + hashlib.sha256(owner.encode()).hexdigest()
    return key


def check_environment_id(environment_id: str) -> str:
    """Ids become RowKey parts; refuse anything that could break a key or a prefix range."""
    if not _ENVIRONMENT_ID.fullmatch(environment_id):
        raise ValueError(f"invalid environment id {environment_id!r}")
    return environment_id


def env_row(environment_id: str) -> str:
    return ENV_PREFIX + check_environment_id(environment_id)


def event_prefix(environment_id: str) -> str:
    return f"{EVENT_PREFIX}{check_environment_id(environment_id)}:"


def event_row(environment_id: str, version: int) -> str:
    if not 0 < version < INVERT:
        raise ValueError(f"version {version} out of range")
    return f"{event_prefix(environment_id)}{INVERT - version:012d}"


def idempotency_row(key: str) -> str:
    return IDEMPOTENCY_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def after_prefix(prefix: str) -> str:
    """The smallest string above every string starting with `prefix` (for range queries)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def utc(moment: datetime) -> datetime:
    """A plain tz-aware UTC datetime; naive values are taken as UTC (never as local time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # Rebuild so SDK subclasses (TablesEntityDatetime) do not leak into the domain.
    return datetime.combine(moment.date(), moment.time(), tzinfo=UTC)


def put_text(row: Row, column: str, text: str) -> None:
    row[column] = text[:_CHUNK]
    for number, start in enumerate(range(_CHUNK, len(text), _CHUNK), start=1):
        row[f"{column}__{number}"] = text[start : start + _CHUNK]


def get_text(row: Mapping[str, Any], column: str) -> str:
    parts = [str(row[column])]
    number = 1
    while f"{column}__{number}" in row:
        parts.append(str(row[f"{column}__{number}"]))
        number += 1
    return "".join(parts)


def _put(row: Row, column: str, value: Any) -> None:
    if value is None:
        return  # an absent property reads back as None (REPLACE drops stale ones)
    if isinstance(value, Enum):
        row[column] = value.value
    elif isinstance(value, list | dict):
        put_text(row, column, json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    elif isinstance(value, str):
        put_text(row, column, value)
    elif isinstance(value, datetime):
        row[column] = utc(value)
    else:
        row[column] = value


def environment_row(partition: str, environment: Environment) -> Row:
    row: Row = {"PartitionKey": partition, "RowKey": env_row(environment.id)}
    values = environment.model_dump(exclude={"etag", *_JSON_FIELDS})
    values.update(environment.model_dump(mode="json", include=set(_JSON_FIELDS)))  # JSON text columns
    for name, value in values.items():
        _put(row, _COLUMN.get(name, name), value)
    return row


def environment_from(row: Mapping[str, Any], etag: str | None) -> Environment:
    data: dict[str, Any] = {}
    for name in Environment.model_fields:
        column = _COLUMN.get(name, name)
        if name == "etag" or column not in row:
            continue
        value = row[column]  # plain, its times UTC already (wire.Entity)
        if isinstance(value, str):
            value = get_text(row, column)
            if name in _JSON_FIELDS:
                value = json.loads(value)
        data[name] = value
    data["etag"] = etag
    return Environment.model_validate(data)


def event_row_for(partition: str, event: AuditEvent, owner: str, version: int) -> Row:
    row: Row = {
        "PartitionKey": partition,
        "RowKey": event_row(event.environment_id, version),
        "owner": owner,
        "version": version,
    }
    for name, value in event.model_dump(exclude={"version"}).items():
        _put(row, name, value)
    return row


def event_from(row: Mapping[str, Any]) -> AuditEvent:
    source = row.get("from_status")
    return AuditEvent(
        environment_id=str(row["environment_id"]),
        from_status=Status(source) if source else None,
        to_status=Status(row["to_status"]),
        actor=Actor(row["actor"]),
        reason=get_text(row, "reason"),
        at=utc(row["at"]),
        version=row.get("version"),
    )


def idempotency_row_for(partition: str, owner: str, record: IdempotencyRecord) -> Row:
    row: Row = {"PartitionKey": partition, "RowKey": idempotency_row(record.key), "owner": owner}
    _put(row, "key", record.key)
    _put(row, "request_hash", record.request_hash)
    _put(row, "environment_id", record.environment_id)
    _put(row, "created_at", record.created_at)
    return row


def idempotency_from(row: Mapping[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=get_text(row, "key"),
        request_hash=get_text(row, "request_hash"),
        environment_id=str(row["environment_id"]),
        created_at=utc(row["created_at"]),
    )


def usage_row_for(partition: str, owner: str, usage: Usage) -> Row:
    return {
        "PartitionKey": partition,
        "RowKey": USAGE_ROW,
        "owner": owner,
        "environments": usage.environments,
        "active": usage.active,
    }


def usage_from(row: Mapping[str, Any]) -> Usage:
    return Usage(environments=int(row["environments"]), active=int(row["active"]))


def index_row_for(environment: Environment, version: int, idle_stop_at: datetime | None) -> Row:
    """An index row announcing `environment` (at record `version`) under its status."""
    row: Row = {
        "PartitionKey": environment.status.value,
        "RowKey": check_environment_id(environment.id),
        "owner": environment.owner,
        "version": version,
        "updated_at": utc(environment.updated_at),
    }
    _put(row, "idle_stop_at", idle_stop_at)
    # Sweep deadlines that do not move while the record keeps its status: the session limit
    # counts from started_at, retention from stopped_at.
    if environment.status is Status.RUNNING:
        _put(row, "started_at", environment.started_at)
        row["budgeted"] = environment.monthly_budget is not None  # the budget pass skips the rest
    if environment.status is Status.STOPPED:
        _put(row, "stopped_at", environment.stopped_at)
    if environment.status is Status.DELETED:
        _put(row, "restorable_until", environment.restorable_until)
    return row


def indexed(environment: Environment) -> bool:
    """Whether a record belongs in the status index: every live one, and retired ones that can
    still be restored from their snapshot."""
    return environment.status is not Status.DELETED or bool(environment.snapshot)


def index_from(row: Mapping[str, Any]) -> IndexEntry:
    idle = row.get("idle_stop_at")
    return IndexEntry(
        status=Status(row["PartitionKey"]),
        owner=str(row["owner"]),
        environment_id=str(row["RowKey"]),
        idle_stop_at=utc(idle) if idle is not None else None,
        updated_at=utc(row["updated_at"]),
        started_at=_optional_time(row.get("started_at")),
        stopped_at=_optional_time(row.get("stopped_at")),
        budgeted=row.get("budgeted"),
    )


def _optional_time(value: Any) -> datetime | None:
    return utc(value) if value is not None else None


def index_version(row: Mapping[str, Any]) -> int:
    return int(row.get("version", 0))
