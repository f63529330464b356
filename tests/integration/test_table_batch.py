"""shared/adapters/tables/batch.py against the SDK's own submit_transaction, on Azurite: the same
sub-requests on the wire, the same answers, the same refusals (type, code, failed operation)."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.adapters.tables import batch
from shared.adapters.tables.client import error_code, failed_operation

Submit = Callable[[TableClient, list[Any]], list[Any]]
SUBMITS: dict[str, Submit] = {
    "sdk": lambda client, operations: client.submit_transaction(operations),
    "lean": batch.submit,
}


@pytest.fixture
def table(azurite: str) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite)
    client = service.create_table(f"batch{uuid.uuid4().hex[:12]}")
    yield client
    service.delete_table(client.table_name)


def wire_requests(body: bytes) -> list[tuple[str, dict[str, str], str]]:
    """Each sub-request of a $batch body: its request line, headers (dates present) and JSON body."""
    outer = email.message_from_bytes(
        b"Content-Type: " + body.split(b"\r\n", 1)[0][2:].join([b'multipart/mixed; boundary="', b'"'])
        + b"\r\n\r\n" + body,
        policy=email.policy.HTTP,
    )  # fmt: skip
    found = []
    for changeset in outer.iter_parts():
        for part in changeset.iter_parts():
            raw = part.get_payload(decode=True)
            head, _, content = raw.decode().partition("\r\n\r\n")
            line, *header_lines = head.split("\r\n")
            headers = dict(h.split(": ", 1) for h in header_lines)
            for dated in ("x-ms-date", "Date"):  # present, each the time it was built
                headers[dated] = bool(headers.get(dated))
            found.append((line, headers, content.strip()))
    return found


def operations() -> list[Any]:
    merged = {"PartitionKey": "p", "RowKey": "b", "when": "2026-12-03T10:00:00Z"}
    return [
        ("create", {"PartitionKey": "p", "RowKey": "a", "text": "é ∑ \u2028", "n": 7, "flag": True}),
        ("upsert", merged, {"mode": UpdateMode.MERGE}),
        ("delete", {"PartitionKey": "p", "RowKey": "gone"}),
    ]


def test_the_lean_body_holds_the_sdks_own_requests(table: TableClient) -> None:
    sent: list[bytes] = []
    table.upsert_entity({"PartitionKey": "p", "RowKey": "gone"})
    table.submit_transaction(operations(), raw_request_hook=lambda r: sent.append(r.http_request.content))
    ours = batch.body(batch.sub_requests(table, operations()), "batch_x", "changeset_y")
    assert wire_requests(ours) == wire_requests(sent[0])
    assert len(wire_requests(ours)) == 3


@pytest.mark.parametrize("way", SUBMITS)
def test_a_committed_transaction_answers_each_rows_etag(table: TableClient, way: str) -> None:
    table.upsert_entity({"PartitionKey": "p", "RowKey": "gone"})
    answers = SUBMITS[way](table, operations())
    assert [sorted(answer) for answer in answers] == [["etag"], ["etag"], []]
    assert answers[0]["etag"] == table.get_entity("p", "a").metadata["etag"]
    assert answers[1]["etag"] == table.get_entity("p", "b").metadata["etag"]
    assert table.get_entity("p", "a")["text"] == "é ∑ \u2028"
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "gone")


def refusal(table: TableClient, submit: Submit, case: str) -> HttpResponseError:
    table.upsert_entity({"PartitionKey": "p", "RowKey": "a", "v": 1})
    stale = table.get_entity("p", "a").metadata["etag"]
    table.upsert_entity({"PartitionKey": "p", "RowKey": "a", "v": 2})
    fresh = {"PartitionKey": "p", "RowKey": "new"}
    cases: dict[str, list[Any]] = {
        "stale etag second": [
            ("create", fresh),
            ("update", {"PartitionKey": "p", "RowKey": "a", "v": 3},
             {"mode": UpdateMode.REPLACE, "etag": stale, "match_condition": MatchConditions.IfNotModified}),
        ],
        "exists first": [("create", {"PartitionKey": "p", "RowKey": "a"}), ("create", fresh)],
        "missing update": [("create", fresh), ("update", {"PartitionKey": "p", "RowKey": "none"})],
    }  # fmt: skip
    with pytest.raises(HttpResponseError) as raised:
        submit(table, cases[case])
    assert table.get_entity("p", "a")["v"] == 2  # nothing of the changeset committed
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "new")
    return raised.value


@pytest.mark.parametrize("case", ["stale etag second", "exists first", "missing update"])
def test_a_refused_operation_is_named_as_the_sdk_names_it(table: TableClient, case: str) -> None:
    sdk = refusal(table, SUBMITS["sdk"], case)
    table.delete_entity("p", "a")
    lean = refusal(table, SUBMITS["lean"], case)
    assert isinstance(sdk, TableTransactionError) and isinstance(lean, TableTransactionError)
    assert (error_code(lean), failed_operation(lean, 2), lean.status_code) == (
        error_code(sdk),
        failed_operation(sdk, 2),
        sdk.status_code,
    )
    assert error_code(lean) in {"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ResourceNotFound"}


def test_a_batch_to_a_missing_table_is_refused_as_the_sdk_refuses_it(azurite: str) -> None:
    client = TableServiceClient.from_connection_string(azurite).get_table_client("nosuchtable")
    refused = []
    for submit in SUBMITS.values():
        with pytest.raises(TableTransactionError) as raised:
            submit(client, [("create", {"PartitionKey": "p", "RowKey": "a"})])
        refused.append((error_code(raised.value), raised.value.status_code))
    assert refused[0] == refused[1] and refused[0][0] == "TableNotFound"


def test_an_empty_transaction_sends_nothing(table: TableClient) -> None:
    assert batch.submit(table, []) == []
