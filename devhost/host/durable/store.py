"""Instances on disk: one JSON file per instance, replaced atomically.

A restarted host loads every file and resumes in-flight orchestrations from their history, so a
write must never leave a half-written file behind: each save goes to a temporary file in the same
directory, is flushed to disk, then renamed over the old file with ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from devhost.host.durable.instance import Instance

_log = logging.getLogger(__name__)
_SUFFIX = ".json"
_MAX_STEM = 180  # keep file names well under common 255-byte limits


class InstanceStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, instance_id: str) -> Path:
        stem = quote(instance_id, safe="")
        if len(stem) > _MAX_STEM:
            # Long ids: readable prefix plus a hash keeps names unique and short.
            digest = hashlib.sha256(instance_id.encode()).hexdigest()[:32]
            stem = f"{stem[:100]}-{digest}"
        return self._dir / f"{stem}{_SUFFIX}"

    def save(self, instance: Instance) -> None:
        data = json.dumps(instance.to_json(), separators=(",", ":"))
        fd, tmp_name = tempfile.mkstemp(dir=self._dir, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, self._path(instance.instance_id))
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def delete(self, instance_id: str) -> None:
        self._path(instance_id).unlink(missing_ok=True)

    def load_all(self) -> list[Instance]:
        """Every stored instance; leftovers of interrupted writes are removed, bad files skipped."""
        for leftover in self._dir.glob(".tmp-*.part"):
            leftover.unlink(missing_ok=True)
        instances: list[Instance] = []
        for path in sorted(self._dir.glob(f"*{_SUFFIX}")):
            try:
                instances.append(Instance.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _log.warning("skipping unreadable instance file %s: %s", path.name, exc)
        return instances
