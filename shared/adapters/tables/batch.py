"""Entity group transactions sent as `TableClient.submit_transaction` sends them, minus the cost.

The SDK (azure-data-tables 12.7 on azure-core 1.41) builds a transaction's sub-requests with its
own `TableBatchOperations` (entity encoding, keys, ETag conditions), then hands them to
azure-core's multipart code, which starts a thread pool for every body and writes and parses it
with the `email` package: about 11 ms of CPU for a one-operation transaction against 3.8 ms for
the same write alone (tests/benchmarks/get_cpu.py), and every status change is a transaction.

Here the same sub-requests (the SDK still builds them) are written as the multipart/mixed body
of the Table service's batch protocol, sent through the client's own pipeline (signing, retries,
logging), and the changeset's answers are read back: their ETags, or the first failed
operation as a `TableTransactionError` with the service's code and message ("<index>:..." names
the operation: performing-entity-group-transactions). The protocol:
learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions.
tests/integration/test_table_batch.py holds it to the SDK's own request and answers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient, TableTransactionError
from azure.data.tables._table_batch import TableBatchOperations  # the SDK's own sub-requests

from shared.adapters.tables.wire import refused, sending

CRLF = "\r\n"


class TransactionRefused(TableTransactionError):
    """The service refused an operation of the changeset (nothing of it was committed)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message=message)
        self.status_code = status
        self.error_code = code
        self.reason = f"HTTP {status}"


def sub_requests(client: TableClient, operations: Iterable[Any]) -> list[HttpRequest]:
    """The changeset's requests exactly as submit_transaction builds them."""
    batch = TableBatchOperations(
        config=client._client._config,
        endpoint=f"{client.scheme}://{client._primary_hostname}",
        table_name=client.table_name,
        is_cosmos_endpoint=client._cosmos_endpoint,
    )
    for operation in operations:
        batch.add_operation(operation)
    return batch.requests


def body(requests: list[HttpRequest], batch: str, changeset: str) -> bytes:
    """The multipart/mixed body: one changeset holding each request as application/http, dated
    as the SDK dates them (its StorageHeadersPolicy runs on every sub-request)."""
    now = formatdate(usegmt=True)
    parts = [f"--{batch}{CRLF}Content-Type: multipart/mixed; boundary={changeset}{CRLF}{CRLF}"]
    for number, request in enumerate(requests):
        content = request.content or ""
        payload = content.decode() if isinstance(content, bytes) else str(content)
        dated = {**request.headers, "x-ms-date": now, "Date": now}
        headers = "".join(f"{name}: {value}{CRLF}" for name, value in dated.items())
        parts.append(
            f"--{changeset}{CRLF}Content-Type: application/http{CRLF}"
            f"Content-Transfer-Encoding: binary{CRLF}Content-ID: {number}{CRLF}{CRLF}"
            f"{request.method} {request.url} HTTP/1.1{CRLF}{headers}{CRLF}"
        )
        parts.append(payload + CRLF)
    parts.append(f"--{changeset}--{CRLF}{CRLF}--{batch}--{CRLF}")
    return "".join(parts).encode()


def submit(client: TableClient, operations: Iterable[Any]) -> list[Mapping[str, Any]]:
    """Commit the operations as one transaction; each operation's answer metadata (its ETag)."""
    requests = sub_requests(client, operations)
    if not requests:
        return []
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    request = HttpRequest(
        "POST",
        f"{client.scheme}://{client._primary_hostname}/$batch",
        headers={
            "x-ms-version": client.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=body(requests, batch, changeset),
    )
    response = client._client.send_request(request, **sending())  # the client's pipeline; not JSON
    response.read()
    if response.status_code != 202:  # the whole batch refused (a bad request, a missing table...)
        raise refused(response)
    answers = parse(response.headers.get("Content-Type", ""), response.text())
    failed = next((answer for answer in answers if not 200 <= answer.status < 300), None)
    if failed is not None:
        raise failed.refusal()
    if len(answers) != len(requests):
        raise HttpResponseError(f"the batch answered {len(answers)} of {len(requests)} operations")
    return [answer.metadata() for answer in answers]


class Answer:
    """One application/http part of a changeset's answer."""

    def __init__(self, status: int, headers: dict[str, str], content: str) -> None:
        self.status, self.headers, self.content = status, headers, content

    def metadata(self) -> dict[str, Any]:
        """What the SDK answers for an operation: its new ETag, if it has one (a delete has none)."""
        return {"etag": self.headers["etag"]} if "etag" in self.headers else {}

    def refusal(self) -> TransactionRefused:
        code, message = "", self.content.strip()
        try:
            error = json.loads(self.content).get("odata.error", {})
            code, message = str(error.get("code", "")), str(error.get("message", {}).get("value", message))
        except (ValueError, AttributeError):
            pass  # not JSON: keep the text
        return TransactionRefused(self.status, code, message)


def parse(content_type: str, text: str) -> list[Answer]:
    """The changeset's answers, in order, from the batch's multipart/mixed answer."""
    return [answer for part in _parts(text, _boundary(content_type)) for answer in _answers(part)]


def _answers(part: str) -> list[Answer]:
    head, _, rest = part.partition(CRLF + CRLF)
    if "multipart/mixed" in head.lower():  # the changeset: its own boundary, one part per answer
        return [answer for inner in _parts(rest, _boundary(head)) for answer in _answers(inner)]
    lines = rest.split(CRLF)
    status_line, separator = lines[0], lines.index("") if "" in lines else len(lines)
    headers = {}
    for line in lines[1:separator]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return [Answer(int(status_line.split()[1]), headers, CRLF.join(lines[separator + 1 :]))]


def _boundary(content_type: str) -> str:
    for piece in content_type.replace("\r\n", ";").split(";"):
        name, _, value = piece.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    raise HttpResponseError(f"no multipart boundary in {content_type!r}")


def _parts(text: str, boundary: str) -> list[str]:
    pieces = text.split(f"--{boundary}")
    return [piece.strip(CRLF) for piece in pieces[1:] if not piece.startswith("--")]
