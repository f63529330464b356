"""Names and inputs of the lifecycle orchestrations (shared by the API that starts them)."""

from __future__ import annotations

from typing import Any, TypedDict

from shared.lifecycle import Command
from shared.models import Environment
from shared.settings import Settings

PROVISION = "provision_environment"
START = "start_environment"
STOP = "stop_environment"
DELETE = "delete_environment"

ORCHESTRATION_FOR: dict[Command, str] = {Command.START: START, Command.STOP: STOP, Command.DELETE: DELETE}
# Seconds between compute status polls while waiting for an environment to come up.
POLL_SECONDS = 3


class Job(TypedDict):
    """The input of every lifecycle orchestration: identifiers only, never secrets (it is kept in
    the orchestration history)."""

    owner: str
    environment_id: str
    operation: str
    deadline_seconds: int
    poll_seconds: int


def job_for(env: Environment, settings: Settings) -> Job:
    assert env.operation is not None
    return Job(
        owner=env.owner,
        environment_id=env.id,
        operation=env.operation,
        deadline_seconds=settings.provision_timeout_seconds,
        poll_seconds=POLL_SECONDS,
    )


def with_fields(job: Job, **fields: Any) -> dict[str, Any]:
    return {**job, **fields}
