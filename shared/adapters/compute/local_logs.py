"""The end of a local environment's log file, read without loading all of it."""

from __future__ import annotations

import os
from pathlib import Path


def read_end(path: Path, size: int) -> str:
    """The last `size` bytes of a file as text ("" when it cannot be read)."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - size))
            return log.read().decode(errors="replace")
    except OSError:
        return ""
