"""The async table reads (shared/adapters/tables/loop.py) against Azurite: one client per event
loop, closed with it, the same rows as the sync client's."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import TableServiceClient
from azure.data.tables.aio import TableServiceClient as AsyncService

from shared.adapters.tables.client import Tables, error_code
from shared.adapters.tables.loop import LoopTables, Opened, close_running_loop, opener_like
from shared.adapters.tables.wire import Entity
from tests.sdk_rows import plain_row


@pytest.fixture
def table(azurite: str) -> Iterator[tuple[TableServiceClient, str]]:
    service = TableServiceClient.from_connection_string(azurite)
    name = f"t{uuid.uuid4().hex[:12]}"
    service.create_table(name).upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": 7})
    yield service, name
    service.delete_table(name)
    service.close()


def test_each_loop_reads_through_a_client_of_its_own_closed_with_it(
    table: tuple[TableServiceClient, str],
) -> None:
    service, name = table
    transports: list[AioHttpTransport] = []

    def open_service() -> Opened:  # as opener_like does, keeping the transport to look at
        transports.append(AioHttpTransport(use_env_settings=False))
        return Opened(AsyncService(service.url, credential=service.credential, transport=transports[-1]))

    tables = LoopTables(open_service)
    found: dict[str, object] = {}

    async def read(label: str) -> None:
        try:
            first = await tables.point(name, "p", "r")
            again = await tables.point(name, "p", "r")  # the same loop: the same client
            missing = await tables.point(name, "p", "nothing")
            found[label] = (first and first["value"], again and again["value"], missing)
        finally:
            await close_running_loop()

    threads = [threading.Thread(target=asyncio.run, args=(read(f"loop-{n}"),)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert found == {"loop-0": (7, 7, None), "loop-1": (7, 7, None)}
    assert len(transports) == 2  # one per loop, not one per read
    assert all(transport.session is None for transport in transports)  # each closed on its loop


def test_a_store_on_a_token_credential_needs_its_async_twin_from_settings() -> None:
    from azure.identity import DefaultAzureCredential

    endpoint = "https://account.table.core.windows.net"
    service = TableServiceClient(endpoint, credential=DefaultAzureCredential())
    open_service = opener_like(service, environment_configures_http=False)  # the sync side still works
    with pytest.raises(TypeError, match="built from settings"):
        open_service()


def test_an_async_query_reads_every_page(table: tuple[TableServiceClient, str]) -> None:
    service, name = table
    rows = [{"PartitionKey": "q", "RowKey": f"r{n}", "n": n} for n in range(5)]
    for row in rows:
        service.get_table_client(name).upsert_entity(row)
    tables = Tables(service, "unused")

    async def query() -> list[int]:
        try:
            found = await tables.query_async(name, "PartitionKey eq @pk", {"pk": "q"}, page_size=2)
            return [row["n"] for row in found]
        finally:
            await close_running_loop()

    assert asyncio.run(query()) == [0, 1, 2, 3, 4]
    assert tables.stats.queries == 3  # pages of 2, 2 and 1


# Keys with what a key may hold and a URL must escape: quotes (doubled in OData), percent signs
# (the owner keys are percent-encoded already), spaces, plus signs, ampersands, astral letters.
AWKWARD_KEYS = [("o'neil%40example.com", "env:it's 100% + & 𝄞"), ("p", "r"), ("a b", "''")]


def test_a_point_read_returns_the_row_the_sdk_returns(table: tuple[TableServiceClient, str]) -> None:
    from datetime import UTC, datetime

    from azure.data.tables import EdmType, EntityProperty

    service, name = table
    client = service.get_table_client(name)
    properties = {
        "text": "x" * 300,
        "number": 7,
        "big": EntityProperty(2**53 + 1, EdmType.INT64),
        "ratio": 0.25,
        "flag": True,
        "at": datetime(2026, 12, 5, 3, 36, 22, 281185, tzinfo=UTC),
        "blob": b"\x00\xff",
    }
    for partition, row_key in AWKWARD_KEYS:
        client.upsert_entity({"PartitionKey": partition, "RowKey": row_key, **properties})
    tables = LoopTables(opener_like(service, environment_configures_http=False))

    async def read_all() -> list[object]:
        try:
            found = [await tables.point(name, p, r) for p, r in AWKWARD_KEYS]
            missing = await tables.point(name, "p", "nothing")
            return [*found, missing, await tables.point("tnosuchtable", "p", "r")]
        finally:
            await close_running_loop()

    *found, missing, no_table = asyncio.run(read_all())
    assert missing is None and no_table is None  # both answered 404
    for (partition, row_key), read in zip(AWKWARD_KEYS, found, strict=True):
        assert isinstance(read, Entity)
        entity = client.get_entity(partition, row_key)
        assert read.etag == entity.metadata["etag"]
        assert read.timestamp == entity.metadata["timestamp"]
        assert read == plain_row(entity)
        assert read["big"] == 2**53 + 1 and read["blob"] == b"\x00\xff"
        # The sync client's read, and one of chosen properties, alike
        assert Tables(service, "unused").point(client, partition, row_key) == read
        chosen = Tables(service, "unused").point(client, partition, row_key, ["flag", "big"])
        assert chosen == {"flag": True, "big": 2**53 + 1} and chosen.etag == read.etag


def test_a_refused_read_raises_what_the_sdk_raises(table: tuple[TableServiceClient, str]) -> None:
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import HttpResponseError

    service, name = table
    wrong = TableServiceClient(
        service.url, credential=AzureNamedKeyCredential(service.account_name, "d3Jvbmcga2V5")
    )
    tables = LoopTables(opener_like(wrong, environment_configures_http=False))

    async def read() -> object:
        try:
            return await tables.point(name, "p", "r")
        finally:
            await close_running_loop()

    client = wrong.get_table_client(name)
    with pytest.raises(HttpResponseError) as sdk:
        client.get_entity("p", "r")
    with pytest.raises(HttpResponseError) as refused:
        asyncio.run(read())
    with pytest.raises(HttpResponseError) as refused_sync:
        Tables(wrong, "unused").point(client, "p", "r")
    with pytest.raises(HttpResponseError) as refused_query:
        next(Tables(wrong, "unused").query(client, "PartitionKey eq @pk", {"pk": "p"}))
    for error in (refused.value, refused_sync.value, refused_query.value):
        assert error.status_code == 403  # not taken for a missing row
        assert type(error) is type(sdk.value) and error_code(error) == error_code(sdk.value) != ""
    # A query of a table that does not exist is refused as the SDK refuses it (a point read is None)
    with pytest.raises(HttpResponseError) as sdk_missing:
        next(iter(service.get_table_client("tnosuchtable").query_entities("PartitionKey eq 'p'")))
    with pytest.raises(HttpResponseError) as missing:
        next(
            Tables(service, "unused").query(
                service.get_table_client("tnosuchtable"), "PartitionKey eq @pk", {"pk": "p"}
            )
        )
    assert type(missing.value) is type(sdk_missing.value) and missing.value.status_code == 404
    assert error_code(missing.value) == error_code(sdk_missing.value) != ""


def test_a_query_finds_what_the_sdks_query_finds_page_by_page(table: tuple[TableServiceClient, str]) -> None:
    from datetime import UTC, datetime, timedelta

    service, name = table
    client = service.get_table_client(name)
    start = datetime(2026, 12, 5, tzinfo=UTC)
    for partition, row_key in AWKWARD_KEYS:
        for n in range(3):
            at = start + timedelta(hours=n)
            client.upsert_entity({"PartitionKey": partition, "RowKey": f"{row_key}:{n}", "n": n, "at": at})
    tables = Tables(service, "unused")
    for query, parameters in [
        ("PartitionKey eq @pk", {"pk": AWKWARD_KEYS[0][0]}),
        ("at ge @since and n lt @n", {"since": start + timedelta(hours=1), "n": 5}),
        ("RowKey ge @low", {"low": "env:it's"}),
    ]:
        sdk = list(client.query_entities(query, parameters=parameters))
        before = tables.stats.queries
        found = list(tables.query(client, query, parameters, page_size=2))
        assert found == [plain_row(row) for row in sdk]
        assert [row.etag for row in found] == [row.metadata["etag"] for row in sdk]
        assert tables.stats.queries - before >= len(found) / 2  # pages of two, continued
        chosen = list(tables.query(client, query, parameters, select=["n"]))
        sdk_chosen = list(client.query_entities(query, parameters=parameters, select=["n"]))
        assert chosen == [plain_row(row) for row in sdk_chosen]
        assert [row.get("n") for row in chosen] == [row.get("n") for row in sdk]
