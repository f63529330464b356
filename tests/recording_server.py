"""A stand-in for the API's activity route: an HTTP server on 127.0.0.1 that records every POST."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

WAIT_LIMIT = 30.0  # a bound so a broken sender cannot hang the run; not a timing assertion


@dataclass(frozen=True)
class Request:
    path: str
    authorization: str
    content_type: str
    body: str


@dataclass
class Recorder:
    port: int = 0
    status: int = 200  # what every request is answered with
    requests: list[Request] = field(default_factory=list)

    def url(self, environment_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/environments/{environment_id}/activity"

    def wait_for(self, count: int, limit: float = WAIT_LIMIT) -> list[Request]:
        deadline = time.monotonic() + limit
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, f"expected {count} request(s), got {len(self.requests)}"
        return list(self.requests)


@contextmanager
def recording_server() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            recorder.requests.append(
                Request(
                    path=self.path,
                    authorization=self.headers.get("Authorization", ""),
                    content_type=self.headers.get("Content-Type", ""),
                    body=self.rfile.read(length).decode(errors="replace"),
                )
            )
            self.send_response(recorder.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: object) -> None:
            pass  # quiet test output

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
