"""shared/adapters/tables/writes.py against the SDK's own write methods, on Azurite: the same
request on the wire, the same row written and ETag answered, the same refusals (type and code)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineRequest
from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient, UpdateMode
from azure.data.tables.aio import TableClient as AsyncTableClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import observability
from shared.adapters.tables import batch, wire, writes
from shared.adapters.tables.client import error_code

# Set by the pipeline per request: when, who signed it, the request's own id.
VOLATILE = {"x-ms-date", "date", "authorization", "x-ms-client-request-id", "content-length"}
Sent = list[tuple[str, str, dict[str, str], Any]]


class Recorded:
    """Two clients of one table, each keeping what its pipeline sent (the client's own hook)."""

    def __init__(self, azurite: str, name: str) -> None:
        self.sent: dict[str, Sent] = {"sdk": [], "ours": []}
        self.sdk = self._client(azurite, name, "sdk")
        self.ours = self._client(azurite, name, "ours")

    def _client(self, azurite: str, name: str, label: str) -> TableClient:
        def hook(request: PipelineRequest[Any]) -> None:
            http = request.http_request
            headers = {k.lower(): v for k, v in http.headers.items() if k.lower() not in VOLATILE}
            body = json.loads(http.body) if http.body else None
            self.sent[label].append((http.method, http.url, headers, body))

        return TableClient.from_connection_string(azurite, name, raw_request_hook=hook)

    def last(self, label: str, etag: str | None = None) -> tuple[str, str, dict[str, str], Any]:
        """The last request sent, the ETag it was conditioned on (each client's own) named alike."""
        method, url, headers, body = self.sent[label][-1]
        if etag is not None and headers.get("if-match") == etag:
            headers = {**headers, "if-match": "<the etag read>"}
        return method, url, headers, body


@pytest.fixture
def table(azurite: str) -> Iterator[Recorded]:
    service = TableServiceClient.from_connection_string(azurite)
    name = f"w{uuid.uuid4().hex[:12]}"
    service.create_table(name)
    yield Recorded(azurite, name)
    service.delete_table(name)
    service.close()


# Quotes, percent signs and astral letters in keys: the characters a key may hold that its URL
# must escape ('/', '\\', '#' and '?' it may not hold: understanding-the-table-service-data-model).
KEYS = {"PartitionKey": "o'wner %2F é", "RowKey": "row '1' & \U0001f600"}
ROW = {
    **KEYS,
    "text": "quote ' and \u2028 and é",
    "n": 7,
    "big": EntityProperty(2**40, EdmType.INT64),
    "ratio": 0.25,
    "flag": True,
    "when": datetime(2026, 12, 5, 10, 0, 1, 234567, tzinfo=UTC),
    "blob": b"\x00\xff",
    "guid": uuid.UUID(int=42),
}


def entity_of(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**row, **changes}


INT64 = EdmType.INT64
AT_ETAG = MatchConditions.IfNotModified
# Each write, done by the SDK's method and by ours, with the same arguments.
Write = Callable[[TableClient, dict[str, Any], str | None], Any]
WRITES: dict[str, tuple[Write, Write]] = {
    "create": (
        lambda client, row, etag: client.create_entity(row),
        lambda client, row, etag: writes.create(client, row),
    ),
    "replace at etag": (
        lambda client, row, etag: client.update_entity(
            row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        ),
        lambda client, row, etag: writes.update(
            client, row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        ),
    ),
    "merge at etag": (
        lambda client, row, etag: client.update_entity(
            row, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
        ),
        lambda client, row, etag: writes.update(
            client, row, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
        ),
    ),
    "merge unconditionally": (
        lambda client, row, etag: client.update_entity(row),
        lambda client, row, etag: writes.update(client, row),
    ),
    "upsert replace": (
        lambda client, row, etag: client.upsert_entity(row, mode=UpdateMode.REPLACE),
        lambda client, row, etag: writes.upsert(client, row, mode=UpdateMode.REPLACE),
    ),
    "upsert merge": (
        lambda client, row, etag: client.upsert_entity(row, mode=UpdateMode.MERGE),
        lambda client, row, etag: writes.upsert(client, row, mode=UpdateMode.MERGE),
    ),
    "delete at etag": (
        lambda client, row, etag: client.delete_entity(
            row["PartitionKey"], row["RowKey"], etag=etag, match_condition=MatchConditions.IfNotModified
        ),
        lambda client, row, etag: writes.delete(
            client, row["PartitionKey"], row["RowKey"], etag=etag, match_condition=AT_ETAG
        ),
    ),
    "delete unconditionally": (
        lambda client, row, etag: client.delete_entity(row["PartitionKey"], row["RowKey"]),
        lambda client, row, etag: writes.delete(client, row["PartitionKey"], row["RowKey"]),
    ),
}


def existing(client: TableClient, row: dict[str, Any], kind: str) -> str | None:
    """The row as the write expects to find it (absent for a create), and its ETag."""
    if kind == "create":
        client.delete_entity(row["PartitionKey"], row["RowKey"])
        return None
    return str(client.upsert_entity(row, mode=UpdateMode.REPLACE)["etag"])


def stored(client: TableClient, row: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    try:
        found = client.get_entity(row["PartitionKey"], row["RowKey"])
    except ResourceNotFoundError:
        return None
    return dict(found), str(found.metadata["etag"])


@pytest.mark.parametrize("kind", WRITES)
def test_each_write_is_the_sdks_request_and_leaves_the_sdks_row(table: Recorded, kind: str) -> None:
    sdk_write, our_write = WRITES[kind]
    changed = entity_of(ROW, text="changed", extra=3)
    results, requests = {}, {}
    for label, client, write in (("sdk", table.sdk, sdk_write), ("ours", table.ours, our_write)):
        etag = existing(client, ROW, kind)
        answer = write(client, changed, etag)
        requests[label] = table.last(label, etag)
        results[label] = stored(client, ROW)
        if results[label] is not None and answer is not None:
            assert answer["etag"] == results[label][1]  # the ETag answered is the row's new one
    assert requests["ours"] == requests["sdk"]
    sdk_row, ours_row = results["sdk"], results["ours"]
    assert (sdk_row is None) == (ours_row is None) == kind.startswith("delete")
    if sdk_row is not None and ours_row is not None:
        assert ours_row[0] == sdk_row[0]


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True).filter(
            lambda name: name not in ("PartitionKey", "RowKey", "Timestamp")
        ),
        st.one_of(
            st.text(max_size=40),
            st.integers(min_value=-(2**31), max_value=2**31 - 1),
            st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda n: EntityProperty(n, INT64)),
            st.floats(allow_nan=False),
            st.booleans(),
            st.binary(max_size=20),
            st.uuids(),
            st.datetimes(
                min_value=datetime(1601, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
            ),
        ),
        max_size=8,
    ),
    partition=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
)
def test_any_entity_goes_out_as_the_sdk_sends_it(
    table: Recorded, values: dict[str, Any], partition: str
) -> None:
    row = {"PartitionKey": partition.replace("/", "-").replace("\\", "-").replace("#", "-").replace("?", "-"),
           "RowKey": "r", **values}  # fmt: skip
    table.sdk.upsert_entity(row, mode=UpdateMode.REPLACE)
    writes.upsert(table.ours, row, mode=UpdateMode.REPLACE)
    assert table.last("ours") == table.last("sdk")


REFUSALS = ["create over a row", "replace at a stale etag", "merge a missing row", "delete at a stale etag"]


def refuse(client: TableClient, case: str, mine: bool) -> None:
    keys = {"PartitionKey": "p", "RowKey": f"r-{case[:6]}"}
    client.upsert_entity({**keys, "v": 1}, mode=UpdateMode.REPLACE)
    stale = str(client.get_entity(keys["PartitionKey"], keys["RowKey"]).metadata["etag"])
    client.upsert_entity({**keys, "v": 2}, mode=UpdateMode.REPLACE)
    at = {"etag": stale, "match_condition": MatchConditions.IfNotModified}
    missing = {"PartitionKey": "p", "RowKey": "nobody"}
    if case == "create over a row":
        (writes.create if mine else TableClient.create_entity)(client, {**keys, "v": 3})
    elif case == "replace at a stale etag":
        if mine:
            writes.update(client, {**keys, "v": 3}, mode=UpdateMode.REPLACE, **at)
        else:
            client.update_entity({**keys, "v": 3}, mode=UpdateMode.REPLACE, **at)
    elif case == "merge a missing row":
        (writes.update if mine else TableClient.update_entity)(client, {**missing, "v": 3})
    else:
        delete = writes.delete if mine else TableClient.delete_entity
        delete(client, keys["PartitionKey"], keys["RowKey"], **at)


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_write_raises_what_the_sdk_raises_and_changes_nothing(table: Recorded, case: str) -> None:
    raised: dict[str, HttpResponseError] = {}
    for label, client in (("sdk", table.sdk), ("ours", table.ours)):
        with pytest.raises(HttpResponseError) as caught:
            refuse(client, case, mine=label == "ours")
        raised[label] = caught.value
        row = stored(client, {"PartitionKey": "p", "RowKey": f"r-{case[:6]}"})
        assert row is not None and row[0]["v"] == 2  # the refused write changed nothing
    assert type(raised["ours"]) is type(raised["sdk"])
    assert isinstance(raised["ours"], ResourceExistsError | ResourceModifiedError | ResourceNotFoundError)
    assert raised["ours"].status_code == raised["sdk"].status_code
    assert error_code(raised["ours"])  # the service's code, for the app's race checks


def test_deleting_a_row_that_is_not_there_is_no_error_as_with_the_sdk(table: Recorded) -> None:
    stale = {"etag": "W/\"datetime'2020-01-01T00%3A00%3A00Z'\"", "match_condition": AT_ETAG}
    for at in ({}, stale):
        assert table.sdk.delete_entity("p", "never", **at) is None
        assert writes.delete(table.ours, "p", "never", **at) is None
        assert table.last("ours") == table.last("sdk")


def test_a_write_to_a_missing_table_is_the_sdks_not_found(azurite: str) -> None:
    client = TableClient.from_connection_string(azurite, f"gone{uuid.uuid4().hex[:8]}")
    with pytest.raises(ResourceNotFoundError) as sdk:
        client.update_entity({"PartitionKey": "p", "RowKey": "r"})
    with pytest.raises(ResourceNotFoundError) as ours:
        writes.update(client, {"PartitionKey": "p", "RowKey": "r"})
    assert error_code(ours.value) == error_code(sdk.value)


def test_the_calls_made_for_a_request_carry_its_id_to_storage(azurite: str) -> None:
    """x-ms-client-request-id is the id of the request being served (Storage's logs record it),
    on reads, queries, writes and transactions, sync and async; unbound, the SDK's own per call."""
    sent: list[str | None] = []

    def hook(request: PipelineRequest[Any]) -> None:
        sent.append(request.http_request.headers.get("x-ms-client-request-id"))

    name = f"w{uuid.uuid4().hex[:12]}"
    service = TableServiceClient.from_connection_string(azurite)
    service.create_table(name)
    client = TableClient.from_connection_string(azurite, name, raw_request_hook=hook)
    row = {"PartitionKey": "p", "RowKey": "r", "v": 1}

    async def read_async() -> None:
        async with AsyncTableClient.from_connection_string(azurite, name, raw_request_hook=hook) as aio:
            assert (await wire.read_point(aio, "p", "r")) == row
            assert [page async for page in wire.query_pages(aio, "PartitionKey eq 'p'")] == [[row]]

    try:
        with observability.bound(request_id="req-7.a:b"):
            writes.upsert(client, row)
            assert wire.read_point_sync(client, "p", "r") == row
            assert list(wire.query_pages_sync(client, "PartitionKey eq 'p'")) == [[row]]
            batch.submit(client, [("upsert", row)])
            asyncio.run(read_async())
        assert sent == ["req-7.a:b"] * 6
        sent.clear()
        writes.upsert(client, row)
        assert wire.read_point_sync(client, "p", "r") == row
        assert len(sent) == 2 and len(set(sent)) == 2 and None not in sent  # one of its own each
    finally:
        service.delete_table(name)
        service.close()
