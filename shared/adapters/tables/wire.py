"""Table reads (point reads and queries) through a table client's own pipeline, each entity
converted once from the JSON.

`TableClient.get_entity` and `query_entities` walk an answer twice before the app sees it: the
generated client's generic deserializer visits every property, then `_convert_to_entity` builds a
TableEntity (datetime subclasses, Int64 wrapped), which the app then turns into its record. On a
record's 30 columns those passes were about a third of a read's CPU (a GET in-process 1.12 ->
0.92 ms, `get_cpu.py`). Here the same request goes through the same pipeline (the client's
authentication, retry, tracing and transport), and the JSON becomes the plain row the app builds
its record from, in one pass; refusals are the SDK's own typed errors, from its own decoder.

The requests and the JSON are Table Storage's REST API: "Query Entities", by both keys or by a
filter (learn.microsoft.com/rest/api/storageservices/query-entities), with property types given
by `<name>@odata.type` annotations
(learn.microsoft.com/rest/api/storageservices/payload-format-for-table-service-operations).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables._error import _decode_error

from shared import observability

if TYPE_CHECKING:
    from azure.core.rest import AsyncHttpResponse, HttpResponse
    from azure.data.tables import TableClient
    from azure.data.tables.aio import TableClient as AsyncTableClient

# The service version the SDK's own requests name (azure-data-tables 12.7 sends 2019-02-02).
VERSION = "2019-02-02"
# minimalmetadata: a property's type is annotated only where JSON cannot tell it (payload-format…).
ACCEPT = "application/json;odata=minimalmetadata"
_ANNOTATION = "@odata.type"


def _datetime(text: str) -> datetime:
    # Edm.DateTime is ISO 8601 in UTC with up to 7 fractional digits; fromisoformat keeps 6. The
    # service writes a "Z"; a value without one is still UTC, never the machine's local time.
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


Continuation = dict[str, str]  # where a query's next page starts
_CONTINUATION = {
    "NextPartitionKey": "x-ms-continuation-NextPartitionKey",
    "NextRowKey": "x-ms-continuation-NextRowKey",
}


def point_request(table: str, partition: str, row_key: str, select: list[str] | None = None) -> HttpRequest:
    """The GET of one entity: a single quote in a key is doubled (OData), then the whole key is
    percent-encoded, as the SDK's own request does; `select` names the properties to return."""
    keys = f"PartitionKey='{_key(partition)}',RowKey='{_key(row_key)}'"
    query = {"$select": ",".join(select)} if select else {}
    return HttpRequest("GET", f"/{quote(table, safe='')}({keys}){_query(query)}", headers=_headers())


def query_request(
    table: str,
    odata: str,
    *,
    top: int | None = None,
    select: list[str] | None = None,
    after: Continuation | None = None,
) -> HttpRequest:
    """One page of a query: `odata` the filter (see `odata_filter`), at most `top` entities, from
    where the last page's continuation (`after`) says."""
    query = {"$filter": odata}
    if top is not None:
        query["$top"] = str(top)
    if select:
        query["$select"] = ",".join(select)
    query.update(after or {})
    return HttpRequest("GET", f"/{quote(table, safe='')}(){_query(query)}", headers=_headers())


def _query(parameters: dict[str, str]) -> str:
    # Every value percent-encoded, as the SDK's serializer does (azure-core adds `params` as given).
    return (
        "?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in parameters.items())
        if parameters
        else ""
    )


def _headers() -> dict[str, str]:
    return {"x-ms-version": VERSION, "DataServiceVersion": "3.0", "Accept": ACCEPT}


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def odata_filter(query: str, parameters: dict[str, Any]) -> str:
    """`query` with each `@name` word replaced by its parameter as an OData literal ("Querying
    tables and entities": learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities),
    as the SDK's `query_entities(parameters=...)` substitutes them (but a time without a zone is
    taken as UTC, as everywhere in the app, not as the machine's local time)."""
    return " ".join(
        _literal(parameters[word[1:]]) if word.startswith("@") else word for word in query.split(" ")
    )


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 32 else f"{value}L"  # an Int64 literal
    if isinstance(value, float):
        return str(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return f"datetime'{moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"
    if isinstance(value, uuid.UUID):
        return f"guid'{value}'"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return "'" + str(value).replace("'", "''") + "'"


def entity_of(body: bytes) -> Entity:
    """The entity of a point read's JSON."""
    return _entity(json.loads(body))


def _entity(document: dict[str, Any]) -> Entity:
    """Keys and properties typed per their annotations; the service's own fields (odata.*,
    Timestamp) beside them, as the SDK keeps them out of an entity's properties."""
    row: dict[str, Any] = {}
    for name, value in document.items():
        if name.startswith("odata.") or name == "Timestamp" or name.endswith(_ANNOTATION):
            continue
        kind = document.get(name + _ANNOTATION)
        row[name] = _TYPED[kind](value) if kind in _TYPED else value
    written = document.get("Timestamp")  # absent when a $select leaves it out
    return Entity(row, str(document["odata.etag"]), _datetime(written) if written else None)


def refused(response: HttpResponse | AsyncHttpResponse) -> HttpResponseError:
    # The SDK's own typed error with the service's code (a 412 ResourceModifiedError, a 403
    # ClientAuthenticationError, `error_code` set), as its own calls raise them; batch.py alike.
    error: HttpResponseError = _decode_error(response)  # type: ignore[no-untyped-call]
    return error


def _point(response: HttpResponse | AsyncHttpResponse, body: bytes) -> Entity | None:
    if response.status_code == 200:
        return entity_of(body)
    if response.status_code == 404:
        return None  # no such entity, or no such table
    raise refused(response)


def _page(
    response: HttpResponse | AsyncHttpResponse, body: bytes
) -> tuple[list[Entity], Continuation | None]:
    """A page's entities, and where the next page starts (None after the last): the service may
    end a page early, even empty, and say so only by these headers ("Query timeout and
    pagination": learn.microsoft.com/rest/api/storageservices/query-timeout-and-pagination)."""
    if response.status_code != 200:
        raise refused(response)  # 404: no such table, as the SDK raises it
    found = [_entity(document) for document in json.loads(body)["value"]]
    after = {
        name: value
        for name, header in _CONTINUATION.items()
        if (value := response.headers.get(header)) is not None
    }
    return found, after or None


# `_client` is the generated client a TableClient sends everything through; its `send_request`
# runs a request through that client's pipeline (aka.ms/azsdk/dpcodegen/python/send_request).


def sending() -> dict[str, Any]:
    """The options every request here is sent with. `stream`: the body is read here, once;
    without it the pipeline's ContentDecodePolicy parses every JSON answer for a result nobody
    reads (2.5% of the local host's CPU per GET). `request_id`: the id of the API request (or
    activity) being served goes out as `x-ms-client-request-id`, which Storage's logs keep as
    ClientRequestId (learn.microsoft.com/azure/azure-monitor/reference/tables/storagetablelogs),
    so they show which request made each call; unbound, the pipeline's RequestIdPolicy makes one
    per call, as before."""
    bound = observability.current("request_id")
    return {"stream": True, "request_id": bound} if bound else {"stream": True}


async def read_point(
    client: AsyncTableClient, partition: str, row_key: str, select: list[str] | None = None
) -> Entity | None:
    """One entity by its keys, or None when the service answers 404."""
    request = point_request(client.table_name, partition, row_key, select)
    response = await client._client.send_request(request, **sending())
    return _point(response, await response.read())


def read_point_sync(
    client: TableClient, partition: str, row_key: str, select: list[str] | None = None
) -> Entity | None:
    """`read_point` through a sync client."""
    request = point_request(client.table_name, partition, row_key, select)
    response = client._client.send_request(request, **sending())
    return _point(response, response.read())


async def query_pages(
    client: AsyncTableClient, odata: str, *, top: int | None = None, select: list[str] | None = None
) -> AsyncIterator[list[Entity]]:
    """Every page of a query, in order."""
    after: Continuation | None = {}
    while after is not None:
        request = query_request(client.table_name, odata, top=top, select=select, after=after)
        response = await client._client.send_request(request, **sending())
        found, after = _page(response, await response.read())
        yield found


def query_pages_sync(
    client: TableClient, odata: str, *, top: int | None = None, select: list[str] | None = None
) -> Iterator[list[Entity]]:
    """`query_pages` through a sync client, a page read when the last one is used up."""
    after: Continuation | None = {}
    while after is not None:
        request = query_request(client.table_name, odata, top=top, select=select, after=after)
        response = client._client.send_request(request, **sending())
        found, after = _page(response, response.read())
        yield found
