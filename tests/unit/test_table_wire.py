"""The table reads' own requests and JSON conversion (shared/adapters/tables/wire.py), held to the
SDK's: the same URL for any key, filter or page, the same literal for any filter parameter, the
same values for every property type."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from azure.data.tables._deserialize import _convert_to_entity
from azure.data.tables._generated.operations._operations import (
    build_table_query_entities_request as sdk_query,
)
from azure.data.tables._generated.operations._operations import (
    build_table_query_entity_with_partition_and_row_key_request as sdk_request,
)
from azure.data.tables._serialize import _parameter_filter_substitution, _prepare_key
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.tables.wire import entity_of, odata_filter, point_request, query_request
from tests.sdk_rows import plain_row

# What Table Storage answers a point read with `odata=minimalmetadata`: a type annotation where
# JSON cannot tell the type (the page "Payload format for Table service operations").
DOCUMENT = {
    "odata.metadata": "https://account.table.core.windows.net/$metadata#envs/@Element",
    "odata.etag": "W/\"datetime'2026-12-05T03%3A36%3A22.2828037Z'\"",
    "PartitionKey": "alice",
    "RowKey": "env:env-0123456789abcdef",
    "Timestamp": "2026-12-05T03:36:22.2828037Z",
    "name": "api",
    "cpu_cores": 2,
    "keep": False,
    "memory_gb": 4.5,
    "whole@odata.type": "Edm.Double",
    "whole": 3,
    "not_a_number@odata.type": "Edm.Double",
    "not_a_number": "NaN",
    "version@odata.type": "Edm.Int64",
    "version": "9007199254740993",
    "created_at@odata.type": "Edm.DateTime",
    "created_at": "2026-12-05T03:36:22.2811850Z",
    "blob@odata.type": "Edm.Binary",
    "blob": base64.b64encode(b"\x00\xffdata").decode(),
    "guid@odata.type": "Edm.Guid",
    "guid": "4f1b2c3d-0000-4000-8000-000000000001",
}


def test_every_property_type_reads_as_the_sdk_reads_it() -> None:
    row = entity_of(json.dumps(DOCUMENT).encode())
    entity = _convert_to_entity(dict(DOCUMENT))
    assert row.etag == entity.metadata["etag"] == DOCUMENT["odata.etag"]
    assert row.timestamp == entity.metadata["timestamp"]
    assert set(row) == set(entity)  # no odata.* field, no Timestamp, no annotation
    sdk = plain_row(entity)
    for name, value in row.items():
        expected = sdk[name]
        if isinstance(expected, float) and expected != expected:
            assert value != value, name  # NaN
        elif isinstance(expected, uuid.UUID | str) and name == "guid":
            assert str(value) == str(expected)
        else:
            assert value == expected and type(value) is type(expected), name
    assert row["version"] == 2**53 + 1  # past a JSON number's precision
    assert row["created_at"] == datetime(2026, 12, 5, 3, 36, 22, 281185, tzinfo=UTC)
    assert row["blob"] == b"\x00\xffdata"
    assert row["whole"] == 3.0 and isinstance(row["whole"], float)


# Any text a key may hold: everything but the characters Table Storage forbids in keys.
KEYS = st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/\\#?"), max_size=40)


@settings(max_examples=200, derandomize=True)
@given(table=st.from_regex(r"[A-Za-z][A-Za-z0-9]{2,20}", fullmatch=True), partition=KEYS, row_key=KEYS)
def test_the_request_addresses_the_entity_as_the_sdks_own(table: str, partition: str, row_key: str) -> None:
    ours = point_request(table, partition, row_key, ["a", "b"])
    theirs = sdk_request(
        table=table, partition_key=_prepare_key(partition), row_key=_prepare_key(row_key), select="a,b"
    )
    assert ours.url == theirs.url
    assert ours.method == theirs.method == "GET"
    for header in ("x-ms-version", "DataServiceVersion", "Accept"):
        assert ours.headers[header] == theirs.headers[header]


# Parameter values of the kinds the app's queries use, and the ones OData spells specially.
VALUES = st.one_of(
    KEYS,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
    st.uuids(),
    st.binary(max_size=16),
)


@settings(max_examples=300, derandomize=True)
@given(values=st.lists(VALUES, min_size=1, max_size=4))
def test_a_filters_parameters_are_the_literals_the_sdk_writes(values: list[object]) -> None:
    query = " and ".join(f"p{n} eq @v{n}" for n in range(len(values)))
    parameters = {f"v{n}": value for n, value in enumerate(values)}
    assert odata_filter(query, parameters) == _parameter_filter_substitution(dict(parameters), query)


@settings(max_examples=100, derandomize=True)
@given(
    odata=KEYS,
    top=st.none() | st.integers(1, 1000),
    select=st.none() | st.lists(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), min_size=1, max_size=3),
    after=st.none() | st.tuples(KEYS, KEYS),
)
def test_a_query_page_is_requested_as_the_sdk_requests_it(
    odata: str, top: int | None, select: list[str] | None, after: tuple[str, str] | None
) -> None:
    continuation = {"NextPartitionKey": after[0], "NextRowKey": after[1]} if after else None
    ours = query_request("envs", odata, top=top, select=select, after=continuation)
    theirs = sdk_query(
        table="envs",
        filter=odata,
        top=top,
        select=",".join(select) if select else None,
        next_partition_key=after[0] if after else None,
        next_row_key=after[1] if after else None,
    )
    assert _split(ours.url) == _split(theirs.url)
    for header in ("x-ms-version", "DataServiceVersion", "Accept"):
        assert ours.headers[header] == theirs.headers[header]


def _split(url: str) -> tuple[str, list[str]]:
    path, _, query = url.partition("?")
    return path, sorted(query.split("&"))


def test_a_time_without_a_zone_is_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        document = {"odata.etag": 'W/"1"', "at@odata.type": "Edm.DateTime", "at": "2008-07-10T00:00:00"}
        assert entity_of(json.dumps(document).encode())["at"] == datetime(2008, 7, 10, tzinfo=UTC)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
