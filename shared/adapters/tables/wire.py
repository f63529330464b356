"""A point read through a table client's own pipeline, its entity converted once from the JSON.

`TableClient.get_entity` walks the answer twice before the app sees it: the generated client's
generic deserializer visits every property, then `_convert_to_entity` builds a TableEntity
(datetime subclasses, Int64 wrapped), and the app then turns that into its record. For a GET of one
environment those passes were a third of the read's CPU (get_cpu.py: the read 0.75 ms through
get_entity, 0.52 ms this way). Here the same request goes through the same pipeline (the client's
authentication, retry, tracing and transport), and the JSON becomes the plain row the app's
record is built from, in one pass.

The request and the JSON are Table Storage's REST API: "Query Entities" addressed by both keys
(learn.microsoft.com/rest/api/storageservices/query-entities), with property types given by
`<name>@odata.type` annotations
(learn.microsoft.com/rest/api/storageservices/payload-format-for-table-service-operations).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest

if TYPE_CHECKING:
    from azure.core.rest import AsyncHttpResponse, HttpResponse
    from azure.data.tables import TableClient
    from azure.data.tables.aio import TableClient as AsyncTableClient

# The service version the SDK's own requests name (azure-data-tables 12.7 sends 2019-02-02).
VERSION = "2019-02-02"
# minimalmetadata: a property's type is annotated only where JSON cannot tell it (payload-format…).
ACCEPT = "application/json;odata=minimalmetadata"
_ANNOTATION = "@odata.type"
_ERRORS = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


def _datetime(text: str) -> datetime:
    # Edm.DateTime is ISO 8601 in UTC with up to 7 fractional digits; fromisoformat keeps 6.
    return datetime.fromisoformat(text).astimezone(UTC)


_TYPED: dict[str, Callable[[Any], Any]] = {
    "Edm.DateTime": _datetime,
    "Edm.Int64": int,  # sent as a string: JSON numbers lose precision past 2**53
    "Edm.Double": float,  # "NaN", "Infinity" and "-Infinity" come as strings
    "Edm.Binary": base64.b64decode,
    "Edm.Guid": uuid.UUID,
}  # Edm.String, Edm.Int32 and Edm.Boolean are JSON's own types


class Entity(dict[str, Any]):
    """A row as read: its keys and properties as plain values, the ETag it was read at and when
    the service last wrote it."""

    __slots__ = ("etag", "timestamp")

    def __init__(self, properties: dict[str, Any], etag: str, timestamp: datetime | None) -> None:
        super().__init__(properties)
        self.etag = etag
        self.timestamp = timestamp


def point_request(table: str, partition: str, row_key: str, select: list[str] | None = None) -> HttpRequest:
    """The GET of one entity: a single quote in a key is doubled (OData), then the whole key is
    percent-encoded, as the SDK's own request does; `select` names the properties to return."""
    keys = f"PartitionKey='{_key(partition)}',RowKey='{_key(row_key)}'"
    headers = {"x-ms-version": VERSION, "DataServiceVersion": "3.0", "Accept": ACCEPT}
    params = {"$select": ",".join(select)} if select else None
    return HttpRequest("GET", f"/{quote(table, safe='')}({keys})", headers=headers, params=params)


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def entity_of(body: bytes) -> Entity:
    """The entity of its JSON: keys and properties typed per their annotations; the service's own
    fields (odata.*, Timestamp) beside them, as get_entity keeps them out of the properties."""
    document: dict[str, Any] = json.loads(body)
    row: dict[str, Any] = {}
    for name, value in document.items():
        if name.startswith("odata.") or name == "Timestamp" or name.endswith(_ANNOTATION):
            continue
        kind = document.get(name + _ANNOTATION)
        row[name] = _TYPED[kind](value) if kind in _TYPED else value
    written = document.get("Timestamp")  # absent when a $select leaves it out
    return Entity(row, str(document["odata.etag"]), _datetime(written) if written else None)


def _answer(response: HttpResponse | AsyncHttpResponse, body: bytes) -> Entity | None:
    if response.status_code == 200:
        return entity_of(body)
    try:
        map_error(status_code=response.status_code, response=response, error_map=_ERRORS)
    except ResourceNotFoundError:
        return None  # no such entity, or no such table
    raise HttpResponseError(response=response)


# `_client` is the generated client a TableClient sends everything through; its `send_request`
# runs a request through that client's pipeline (aka.ms/azsdk/dpcodegen/python/send_request).


async def read_point(
    client: AsyncTableClient, partition: str, row_key: str, select: list[str] | None = None
) -> Entity | None:
    """One entity by its keys, or None when the service answers 404."""
    request = point_request(client.table_name, partition, row_key, select)
    response = await client._client.send_request(request)
    return _answer(response, await response.read())


def read_point_sync(
    client: TableClient, partition: str, row_key: str, select: list[str] | None = None
) -> Entity | None:
    """`read_point` through a sync client."""
    response = client._client.send_request(point_request(client.table_name, partition, row_key, select))
    return _answer(response, response.read())
