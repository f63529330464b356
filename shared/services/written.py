"""The records this process last wrote, for the next step of the same operation.

A create's steps follow one another: the API's insert, then ensure_workspace, create_compute, the
polls and settle_environment, each deciding on the record the step before it wrote. Recalled
here, a step decides without reading it again. The recalled record may be stale (another worker
wrote since), which costs nothing in correctness: a step's write is conditional on the record's
ETag, so the service refuses a stale one and the step reads afresh (EnvironmentService.mutate),
and a step that would write nothing on a recalled record decides again on a fresh read. On Azure
the steps may run on other instances; one that never wrote the record reads it, as before.
"""

from __future__ import annotations

from shared.domain.environment import Environment
from shared.recent import Recent

RECALLED_RECORDS = 1024  # a few KB each; the least recently used are forgotten first


class WrittenRecords:
    def __init__(self, limit: int = RECALLED_RECORDS) -> None:
        self._records: Recent[tuple[str, str], Environment] = Recent(limit)

    def remember(self, env: Environment) -> None:
        """`env` as just written, with the ETag the service answered."""
        if env.etag is not None and env.operation is not None:
            self._records.put((env.owner, env.id), env)

    def recall(self, owner: str, environment_id: str, operation: str) -> Environment | None:
        """The record as this process last wrote it, if that write was `operation`'s own."""
        env = self._records.get((owner, environment_id))
        return env if env is not None and env.operation == operation else None
