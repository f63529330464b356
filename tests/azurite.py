"""A real Azurite table service for tests: started on a free loopback port, stopped afterwards.

Usage: `with azurite_tables() as connection_string: ...`. Reusable outside pytest (benchmarks, the
local host's tests); inside pytest, `require_azurite()` turns a missing install into skip or fail.
"""

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
from pathlib import Path

import pytest

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


def require_azurite(binary: Path = BINARY) -> Path:
    """The azurite-table binary, or skip (locally) / fail (under CI=true) with the reason."""
    if binary.exists():
        return binary
    reason = f"Azurite is not installed ({binary} is missing); run `npm ci` in {ROOT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}. Integration tests must not be skipped in CI.", pytrace=False)
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    """True once the table endpoint answers HTTP at all (an auth error still means it is up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{ACCOUNT}/Tables", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    # Azurite runs under node with children; signal the whole group it leads.
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _start(binary: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    # In-memory persistence refuses --location; the temp dir is the cwd, where Azurite puts any files.
    log_path = workdir / "azurite.log"
    # A free port can be taken between probing and binding; try a few.
    for _ in range(5):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(binary), "--inMemoryPersistence", "--tableHost", "127.0.0.1", "--tablePort", str(port),
                 "--skipApiVersionCheck", "--silent", "--disableTelemetry"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=workdir, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(port):
                return process, port
            time.sleep(0.1)
        _stop(process)
        if "EADDRINUSE" not in log_path.read_text(errors="replace"):
            break
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise AzuriteError(f"azurite-table did not answer within {START_TIMEOUT:.0f}s; log tail:\n{tail}")


@contextmanager
def azurite_tables(binary: Path = BINARY) -> Iterator[str]:
    """Run an in-memory Azurite table service; yields its connection string."""
    with tempfile.TemporaryDirectory(prefix="dev8-azurite-") as tmp:
        process, port = _start(binary, Path(tmp))
        try:
            yield connection_string(port)
        finally:
            _stop(process)
