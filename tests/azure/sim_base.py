"""An azure-core HttpTransport that answers from an in-memory service instead of the network.

The real SDK clients (their serializers, retry policies, LRO pollers, error mapping) run unchanged
on top: only the bottom of the pipeline is replaced. Subclasses implement `handle(request)`.

Shared machinery:
- a virtual clock: `sleep()` (what azure-core's RetryPolicy and LRO pollers call between tries)
  records the wait and advances the clock instead of waiting, so tests never wait for real;
- every request is recorded (method, url, headers without Authorization, parsed JSON body);
- faults: throttling (429 + Retry-After, enforced: a request that comes back before the
  Retry-After time has passed is throttled again and counted as a violation), a random failure
  rate (503), lost responses (the request is carried out, then the client sees a connection error).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline._tools import is_rest
from azure.core.pipeline.transport import HttpTransport
from azure.core.pipeline.transport._base import HttpClientTransportResponse
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse


@dataclass
class Recorded:
    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, raw text, or None
    raw: bytes
    at: float  # virtual time
    status: int | None = None


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON, str -> text, bytes as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Throttle:
    at: float
    retry_after: float
    path: str


class _Wire:
    """What http.client.HTTPResponse offers, which azure-core's response classes wrap."""

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self._headers = headers
        self._body = body

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self._headers.items())

    def read(self, *_: Any) -> bytes:
        return self._body

    def close(self) -> None:
        pass


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _SimResponse(RestHttpClientTransportResponse):
    """http.client's response offers no streaming to azure-core; a download (which streams) gets
    the simulator's in-memory body in one piece."""

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.read()

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.read()


class SimTransport(HttpTransport):  # type: ignore[type-arg]
    def __init__(self, *, seed: int = 0, clock: Callable[[], float] | None = None) -> None:
        self.lock = threading.RLock()
        self.random = random.Random(seed)
        self.requests: list[Recorded] = []
        self.sleeps: list[float] = []
        self.slept = 0.0
        self._external_clock = clock
        # Faults
        self.throttle_rate = 0.0
        self.retry_after = 5.0
        self.failure_rate = 0.0
        self._throttle_next = 0
        self._lose: list[tuple[str, str, int]] = []  # (method, path fragment, times)
        self._scripted: list[list[Any]] = []  # [method, path fragment, Reply, times]
        self.throttles: list[Throttle] = []
        self.violations: list[tuple[Throttle, Recorded]] = []
        self._throttled_until = 0.0

    # --- HttpTransport ----------------------------------------------------------------------------

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> SimTransport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def sleep(self, duration: float) -> None:
        with self.lock:
            self.sleeps.append(duration)
            self.slept += duration

    def now(self) -> float:
        base = self._external_clock() if self._external_clock else 0.0
        return base + self.slept

    def send(self, request: Any, **kwargs: Any) -> Any:
        with self.lock:
            record = self._record(request)
            reply = self.authorize(request) or self._faults(record)
            lost = False
            if reply is None:
                lost = self._take_loss(record)
                reply = self.handle(record)
            record.status = reply.status
        if lost:
            raise ServiceResponseError("simulated: the connection dropped before the response arrived")
        return self._response(request, reply, stream=bool(kwargs.get("stream")))

    # --- to implement -----------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def authorize(self, request: Any) -> Reply | None:
        """An error reply when the service would refuse the request's credentials (default: none)."""
        return None

    # --- test controls ----------------------------------------------------------------------------

    def throttle_next(self, count: int, retry_after: float = 5.0) -> None:
        """The next `count` requests are answered 429 with this Retry-After."""
        with self.lock:
            self._throttle_next = count
            self.retry_after = retry_after

    def fail_next(
        self, method: str, path_contains: str, status: int, code: str, message: str = "", times: int = 1
    ) -> None:
        """Answer the next matching request(s) with this error, doing nothing."""
        reply = self.error_reply(status, code, message or f"simulated {code}")
        with self.lock:
            self._scripted.append([method.upper(), path_contains, reply, times])

    def lose_next(self, method: str, path_contains: str, times: int = 1) -> None:
        """Carry out the next matching request(s) but drop the response (a connection error)."""
        with self.lock:
            self._lose.append((method.upper(), path_contains, times))

    def waits_after_throttling(self) -> list[tuple[float, float]]:
        """Per 429 answered: (the Retry-After it asked, the virtual time that passed before the
        next request reached the service)."""
        pairs = []
        for current, following in zip(self.requests, self.requests[1:], strict=False):
            if current.status == 429:
                asked = float(next(t.retry_after for t in self.throttles if t.at == current.at))
                pairs.append((asked, following.at - current.at))
        return pairs

    def of(self, method: str, path_contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method.upper() and path_contains in r.path]

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        """An error in the service's own format (ARM: JSON)."""
        return Reply(status, _error_body(code, message), {"x-ms-error-code": code})

    # --- internals --------------------------------------------------------------------------------

    def _record(self, request: Any) -> Recorded:
        raw = _raw_body(request)
        parts = urlsplit(request.url)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        record = Recorded(
            request.method.upper(), request.url, parts.path, query, headers, body, raw, self.now()
        )
        self.requests.append(record)
        return record

    def _faults(self, record: Recorded) -> Reply | None:
        now = record.at
        if now < self._throttled_until:
            # Came back sooner than Retry-After said: real ARM throttles it again.
            self.violations.append((self.throttles[-1], record))
            return self._throttle(record, self._throttled_until - now)
        for entry in self._scripted:
            method, fragment, reply, times = entry
            if method == record.method and fragment in record.path and times > 0:
                entry[3] -= 1
                return reply
        if self._throttle_next > 0:
            self._throttle_next -= 1
            return self._throttle(record, self.retry_after)
        if self.throttle_rate and self.random.random() < self.throttle_rate:
            return self._throttle(record, self.retry_after)
        if self.failure_rate and self.random.random() < self.failure_rate:
            return self.error_reply(503, "ServiceUnavailable", "simulated outage")
        return None

    def _throttle(self, record: Recorded, retry_after: float) -> Reply:
        wait = max(1, round(retry_after))
        self.throttles.append(Throttle(record.at, wait, record.path))
        self._throttled_until = record.at + wait
        reply = self.error_reply(429, "TooManyRequests", "simulated throttling")
        reply.headers["Retry-After"] = str(wait)
        return reply

    def _take_loss(self, record: Recorded) -> bool:
        for index, (method, fragment, times) in enumerate(self._lose):
            if method == record.method and fragment in record.path:
                if times <= 1:
                    del self._lose[index]
                else:
                    self._lose[index] = (method, fragment, times - 1)
                return True
        return False

    def _response(self, request: Any, reply: Reply, *, stream: bool) -> Any:
        headers = {"x-ms-request-id": f"sim-{len(self.requests)}", "Date": formatdate(usegmt=True)}
        headers.update(reply.headers)
        if isinstance(reply.body, (dict, list)):
            payload = json.dumps(reply.body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
            headers.setdefault("Content-Type", "application/xml")
        else:
            payload = reply.body or b""
        headers["Content-Length"] = str(len(payload))
        wire = _Wire(reply.status, _REASONS.get(reply.status, "Status"), headers, payload)
        if is_rest(request):
            response = _SimResponse(request=request, internal_response=wire)
            response.read()  # the body is in memory: a streamed download iterates over it
            return response
        return HttpClientTransportResponse(request, wire)


def _raw_body(request: Any) -> bytes:
    for attribute in ("content", "data", "body"):
        value = getattr(request, attribute, None)
        if value is None:
            continue
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, (dict, list)):
            return json.dumps(value).encode()
        if hasattr(value, "read"):
            data = value.read()
            return data if isinstance(data, bytes) else str(data).encode()
    return b""


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
