"""The two tables, the clients that reach them and what every table module shares: request
counting, point reads and paged queries, ETag conditions and the codes of a lost race."""

from __future__ import annotations

import builtins
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError

from shared.adapters.tables import batch, writes
from shared.adapters.tables.loop import LoopTables, Opener, opener_like
from shared.adapters.tables.wire import Entity, odata_filter, query_pages, query_pages_sync, read_point_sync
from shared.errors import ConcurrencyConflict, QuotaExceeded

if TYPE_CHECKING:
    from shared.settings import Settings

BATCH = 100  # operations in one entity group transaction
T = TypeVar("T")
CONNECTIONS = 32  # kept open per table endpoint: at least the threads that call at once
MAX_ATTEMPTS = 20  # usage races (and index row races) before giving up with ConcurrencyConflict
# Codes of a lost optimistic race: an ETag mismatch, a row created meanwhile, a row gone meanwhile.
RACE_CODES = frozenset(
    {
        "UpdateConditionNotSatisfied",
        "ConditionNotMet",
        "EntityAlreadyExists",
        "ResourceNotFound",
        "EntityNotFound",
    }
)


@dataclass(slots=True)
class TableStats:
    """Requests made by the adapter (for benchmarks); one query is one page fetched."""

    queries: int = 0
    point_reads: int = 0
    writes: int = 0
    transactions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "queries": self.queries,
                "point_reads": self.point_reads,
                "writes": self.writes,
                "transactions": self.transactions,
            }

    def reset(self) -> None:
        with self._lock:
            self.queries = self.point_reads = self.writes = self.transactions = 0


class Tables:
    """`{prefix}Environments` (one partition per owner), `{prefix}EnvironmentIndex` (one
    partition per status, plus the id directory and the orphan ledger) and `{prefix}ResourceSamples`
    (one partition per environment, a row per hour), with counted requests."""

    def __init__(self, service: TableServiceClient, prefix: str, open_async: Opener | None = None) -> None:
        self.service = service
        # The reads made on the worker's event loop (see loop.py): the same account, async clients.
        self.loop = LoopTables(open_async or opener_like(service, environment_configures_http()))
        self.environments_table = f"{prefix}Environments"
        self.index_table = f"{prefix}EnvironmentIndex"
        self.samples_table = f"{prefix}ResourceSamples"
        self.environments: TableClient = service.get_table_client(self.environments_table)
        self.index: TableClient = service.get_table_client(self.index_table)
        self.samples: TableClient = service.get_table_client(self.samples_table)
        self.stats = TableStats()

    def ensure(self) -> None:
        """Create the tables if absent (idempotent)."""
        for name in (self.environments_table, self.index_table, self.samples_table):
            self.stats.add("writes")
            self.service.create_table_if_not_exists(name)

    def ping(self) -> None:
        # One empty single-partition page: cheap, and raises if the service or table is unreachable.
        next(self.query(self.environments, "PartitionKey eq @pk", {"pk": "ping"}, page_size=1), None)

    def point(
        self, table: TableClient, partition: str, row_key: str, select: builtins.list[str] | None = None
    ) -> Entity | None:
        """One entity, read through the client's pipeline and converted once (wire.py)."""
        self.stats.add("point_reads")
        return read_point_sync(table, partition, row_key, select)

    async def point_async(self, table: str, partition: str, row_key: str) -> Entity | None:
        """`point` on the running event loop, through the async client; `table` is its name."""
        self.stats.add("point_reads")
        return await self.loop.point(table, partition, row_key)

    async def query_async(
        self, table: str, query: str, parameters: dict[str, Any], page_size: int | None = None
    ) -> builtins.list[Entity]:
        """`query` on the running event loop, every page of it; `table` is its name."""
        found: builtins.list[Entity] = []
        async for page in query_pages(self.loop.table(table), odata_filter(query, parameters), top=page_size):
            self.stats.add("queries")
            found += page
        return found

    def query(
        self,
        table: TableClient,
        query: str,
        parameters: dict[str, Any],
        *,
        page_size: int | None = None,
        select: builtins.list[str] | None = None,
    ) -> Iterator[Entity]:
        """The rows `query` finds (`@name` words are its parameters), read a page at a time
        through the client's pipeline and converted once (wire.py)."""
        for page in query_pages_sync(table, odata_filter(query, parameters), top=page_size, select=select):
            self.stats.add("queries")
            yield from page

    def delete_rows(self, table: TableClient, found: Iterable[Entity]) -> int:
        """Delete the rows (their keys are enough), a transaction per partition and hundred.
        A row gone meanwhile is done: that batch is deleted one by one. Returns the rows."""
        deleted = 0
        for chunk in transactions(((str(row["PartitionKey"]), str(row["RowKey"])) for row in found), first):
            self.stats.add("transactions")
            deleted += len(chunk)
            try:
                batch.submit(table, [("delete", {"PartitionKey": p, "RowKey": k}) for p, k in chunk])
            except (TableTransactionError, ResourceNotFoundError):
                for partition, key in chunk:
                    self.stats.add("writes")
                    writes.delete(table, partition, key)  # absent: no error (the SDK's rule)
        return deleted

    def delete_partition(self, table: TableClient, partition: str) -> int:
        """Delete every row of one partition (read by their keys only). Returns the rows."""
        keys = self.query(table, "PartitionKey eq @pk", {"pk": partition}, select=["PartitionKey", "RowKey"])
        return self.delete_rows(table, keys)


def transactions(items: Iterable[T], partition: Callable[[T], object]) -> Iterator[builtins.list[T]]:
    """The items grouped by partition, a hundred at most per group: one entity group transaction
    each (at most 100 operations, all in one partition: performing-entity-group-transactions)."""
    groups: dict[object, builtins.list[T]] = defaultdict(list)
    for item in items:
        groups[partition(item)].append(item)
    for group in groups.values():
        for start in range(0, len(group), BATCH):
            yield group[start : start + BATCH]


def first(item: tuple[Any, ...]) -> object:
    return item[0]


def service_from_settings(settings: Settings) -> TableServiceClient:
    """A connection string (Azurite locally), or the endpoint with the app's managed identity."""
    options = transport_options()
    if settings.tables_connection is not None:
        return TableServiceClient.from_connection_string(
            settings.tables_connection.get_secret_value(), **options
        )
    if settings.tables_endpoint:
        # Lazy: azure.identity is heavy and only needed with managed identity.
        from shared.adapters.azure_common import credential

        return TableServiceClient(
            endpoint=settings.tables_endpoint,
            credential=credential(settings.managed_identity_client_id),
            **options,
        )
    raise ValueError("DEV8_TABLES_CONNECTION or DEV8_TABLES_ENDPOINT must be set")


def environment_configures_http() -> bool:
    """Whether the environment names a proxy or a netrc file: then the HTTP clients keep their
    per-request handling of them (NO_PROXY needs it)."""
    return any("PROXY" in name.upper() or name.upper() == "NETRC" for name in os.environ)


def transport_options() -> dict[str, Any]:
    """Read the environment's HTTP settings once instead of on every table call: `requests`
    re-scans os.environ for proxies per request (measured: about a tenth of a point read's CPU)."""
    if environment_configures_http():
        return {}
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    # requests keeps 10 connections per host: a sweep's 16 workers, or the Functions worker's
    # threads (min(32, cores + 4) by default: python-scale-performance-reference-guide), would
    # open and drop the rest on every call. Keep one per thread that may call at once.
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=CONNECTIONS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return {"transport": RequestsTransport(session=session, session_owner=False)}


def if_match(value: str) -> dict[str, Any]:
    return {"etag": value, "match_condition": MatchConditions.IfNotModified}


def error_code(error: HttpResponseError) -> str:
    code = getattr(error, "error_code", None)  # set by the tables SDK when it decodes an error
    return str(getattr(code, "value", code) or "")


def failed_operation(error: TableTransactionError, count: int) -> int | None:
    """Which operation of a batch failed: the service prefixes the message with its index."""
    head = (error.message or "").split(":", 1)[0].strip()
    if head.isdigit() and int(head) < count:
        return int(head)
    return None


def nothing_committed(error: Exception) -> bool:
    """Whether a failed write certainly changed nothing (a 5xx or a lost answer may hide a commit)."""
    if isinstance(error, HttpResponseError):
        return error.status_code is not None and error.status_code < 500
    return isinstance(error, QuotaExceeded | ConcurrencyConflict)


def backoff(attempt: int) -> None:
    # Jitter spreads racing writers apart; not security sensitive.
    time.sleep(random.uniform(0, min(0.2, 0.004 * 2**attempt)))  # noqa: S311
