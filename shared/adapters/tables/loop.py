"""The table reads made on the Functions worker's event loop, through azure-data-tables' async
client, instead of the sync client on a worker thread.

A GET of one environment is one point read. Made through the sync client it waits for a free
thread of the worker's pool (min(32, cores + 4) threads) and then for the GIL beside the others,
and `requests` adds its own layers: at 50 clients the GET's p99 was twice the async client's read
(`api_latency.py`). The worker runs an `async` function on its event loop instead, where such a
read is one task among the others (python-scale-performance-reference-guide: "Async"), with the
HTTP client the Durable SDK already brings (aiohttp).

An aiohttp session belongs to the event loop it was opened on, so there is one client per loop
(the worker has one for its life; tests and the local host start and stop several) and each is
closed by `close()` on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

from shared.adapters.tables.wire import Entity, read_point

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.data.tables import TableServiceClient
    from azure.data.tables.aio import TableClient as AsyncTableClient
    from azure.data.tables.aio import TableServiceClient as AsyncTableServiceClient

    from shared.settings import Settings


@dataclass
class Opened:
    """What one loop opened: the service client (its transport is the tables'), and a credential
    of its own to close with it when the app made one (managed identity)."""

    service: AsyncTableServiceClient
    credential: AsyncTokenCredential | None = None
    tables: dict[str, AsyncTableClient] = field(default_factory=dict)


Opener = Callable[[], Opened]


class LoopTables:
    """Async table clients, one set per running event loop, opened on first use."""

    _every: weakref.WeakSet[LoopTables] = weakref.WeakSet()  # for close_running_loop

    def __init__(self, open_service: Opener) -> None:
        LoopTables._every.add(self)
        self._open = open_service
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Opened] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()  # loops of several threads (the local host's tests) may open at once

    def table(self, name: str) -> AsyncTableClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            opened = self._by_loop.get(loop)
            if opened is None:
                opened = self._by_loop[loop] = self._open()
            client = opened.tables.get(name)
            if client is None:
                client = opened.tables[name] = opened.service.get_table_client(name)
        return client

    async def point(self, table: str, partition: str, row_key: str) -> Entity | None:
        return await read_point(self.table(table), partition, row_key)

    async def close(self) -> None:
        """Close what the running loop opened (its HTTP session and credential), if anything."""
        with self._lock:
            opened = self._by_loop.pop(asyncio.get_running_loop(), None)
        if opened is None:
            return
        await opened.service.close()
        if opened.credential is not None:
            await opened.credential.close()


async def close_running_loop() -> None:
    """Close what every LoopTables opened on the running loop (a host stopping its loop)."""
    for tables in list(LoopTables._every):
        await tables.close()


def transport_options(environment_configures_http: bool) -> dict[str, Any]:
    """Without a proxy or netrc in the environment, aiohttp need not look them up: with its
    `trust_env` (azure-core's default) it does so again for every request, on a thread of its own
    (measured: the loop served 548 GETs a second with it, 828 without)."""
    if environment_configures_http:
        return {}
    from azure.core.pipeline.transport import AioHttpTransport

    return {"transport": AioHttpTransport(use_env_settings=False)}


def opener_from_settings(settings: Settings, environment_configures_http: bool) -> Opener:
    """The async twin of `client.service_from_settings`: a connection string, or the endpoint with
    the app's managed identity (an async credential per loop: its token requests are the loop's)."""

    def open_service() -> Opened:
        from azure.data.tables.aio import TableServiceClient as AsyncService

        options = transport_options(environment_configures_http)
        if settings.tables_connection is not None:
            connection = settings.tables_connection.get_secret_value()
            return Opened(AsyncService.from_connection_string(connection, **options))
        if settings.tables_endpoint:
            from shared.adapters.azure_common import async_credential

            identity = async_credential(settings.managed_identity_client_id)
            return Opened(AsyncService(settings.tables_endpoint, credential=identity, **options), identity)
        raise ValueError("DEV8_TABLES_CONNECTION or DEV8_TABLES_ENDPOINT must be set")

    return open_service


def opener_like(service: TableServiceClient, environment_configures_http: bool) -> Opener:
    """An opener for the account a sync client reaches (a store built from one, as tests do), when
    its credential is a key or a SAS: those serve both clients. A token credential is sync only;
    such a store is built by `from_settings`, which opens its own (refused here at the first read)."""
    credential = service.credential

    def open_service() -> Opened:
        from azure.data.tables.aio import TableServiceClient as AsyncService

        if not isinstance(credential, AzureNamedKeyCredential | AzureSasCredential):
            raise TypeError("a store on a token credential reads asynchronously only if built from settings")

        options = transport_options(environment_configures_http)
        return Opened(AsyncService(service.url, credential=credential, **options))

    return open_service
