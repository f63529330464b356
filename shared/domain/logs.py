"""Container logs as the API gives them: which container, how many lines, at most how much text,
and with the environment's secrets taken out. Pure: the compute backend reads, this shapes."""

from __future__ import annotations

from enum import StrEnum

MAX_TAIL = 1000
DEFAULT_TAIL = 200
MAX_CHARS = 64 * 1024
REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values would blank out ordinary text


class LogSource(StrEnum):
    IDE = "ide"  # the workspace container: entrypoint, code-server, the agents
    TLS = "tls"  # the HTTPS sidecar (ACI only)


def tail_lines(text: str, tail: int) -> str:
    """The last `tail` lines, then at most MAX_CHARS of them (the newest kept)."""
    lines = text.splitlines()[-tail:] if tail > 0 else []
    shown = "\n".join(lines)
    return shown[-MAX_CHARS:]


def scrub(text: str, secrets: list[str]) -> str:
    """Every secret value replaced, longest first (one may contain another)."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
