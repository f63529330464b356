"""Azurite's table service as a child process: for `make dev` (on disk, fixed port) and for tests
(in memory, free port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / ".bin" / "azurite-table"
# Azurite's documented development account; a public, well-known value, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT = 30.0


class AzuriteError(RuntimeError):
    """Azurite did not start (the message carries the tail of its log)."""


def connection_string(port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://{host}:{port}/{ACCOUNT};"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    """True once the table endpoint answers HTTP at all (an auth error still means it is up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{ACCOUNT}/Tables", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def stop(self) -> None:
        # SIGINT is Azurite's graceful shutdown (it saves its database); signal the whole group.
        for sig, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if self.process.poll() is not None:
                return
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=grace)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def start(workdir: Path, *, binary: Path = BINARY, port: int | None = None, persist: bool = False) -> Azurite:
    """Start azurite-table with its files under `workdir`: in memory unless `persist`, on `port`
    or a free one (retried, since a free port can be taken between probing and binding)."""
    if not binary.exists():
        raise AzuriteError(f"Azurite is not installed ({binary} is missing): run `npm ci`")
    log_path = workdir / "azurite.log"
    for _ in range(1 if port else 5):
        chosen = port or free_port()
        storage = ["--location", str(workdir)] if persist else ["--inMemoryPersistence"]
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
                [str(binary), *storage, "--tableHost", "127.0.0.1", "--tablePort", str(chosen),
                 "--skipApiVersionCheck", "--silent", "--disableTelemetry"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=workdir, start_new_session=True,
            )  # fmt: skip
        azurite = Azurite(process, chosen)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if answers(chosen):
                return azurite
            time.sleep(0.1)
        azurite.stop()
        if "EADDRINUSE" not in log_path.read_text(errors="replace"):
            break
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise AzuriteError(f"azurite-table did not answer within {START_TIMEOUT:.0f}s; log tail:\n{tail}")


@contextmanager
def azurite_tables(binary: Path = BINARY) -> Iterator[str]:
    """Run an in-memory Azurite table service on a free port; yields its connection string."""
    with tempfile.TemporaryDirectory(prefix="dev8-azurite-") as tmp:
        azurite = start(Path(tmp), binary=binary)
        try:
            yield azurite.connection_string
        finally:
            azurite.stop()
