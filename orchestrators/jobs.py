"""Inputs of the lifecycle orchestrations (their names and instance ids: shared/domain/operation.py)."""

from __future__ import annotations

from typing import Any, TypedDict

from shared import observability
from shared.domain.environment import Environment
from shared.domain.operation import instance_id, orchestrator
from shared.settings import ComputeBackendName, Settings

# Seconds between compute status polls while waiting for an environment to come up: the first
# wait, doubled after each poll up to the last on ACI, where each poll is a GET on ARM (which
# throttles reads per subscription and region), an activity and a timer in the history (replayed
# in full). Local and simulated polls probe a port on this machine (or nothing): every half
# second for the first 10 s, so a code-server that answers after 1.2 s is not seen RUNNING only
# at the 3 s poll; then backing off to 3 s, so one that never answers (up to its 120 s boot
# timeout) does not grow a history of hundreds of polls.
POLL_SECONDS = 3
POLL_MAX_SECONDS = 30
LOCAL_POLL_SECONDS = 0.5
LOCAL_POLL_STEADY_SECONDS = 10
# How long a step Azure refused for the app's identity is tried again: role assignments can take
# up to 10 minutes to apply (learn.microsoft.com/azure/role-based-access-control/troubleshooting,
# "Role assignment changes are not being detected").
AUTHORIZATION_GRACE_SECONDS = 600
# Between the rounds of an owner's erasure while some environment is busy (creating, stopping...).
FORGET_WAIT_SECONDS = 15


class Job(TypedDict):
    """The input of every lifecycle orchestration: identifiers only, never secrets (it is kept in
    the orchestration history)."""

    owner: str
    environment_id: str
    operation: str
    deadline_seconds: int
    poll_seconds: float
    poll_steady_seconds: float  # polled every poll_seconds until then, backing off after
    poll_max_seconds: float
    first_poll_waits: bool  # a request that left the compute pending counts as the first poll
    authorization_grace_seconds: int
    restore_grace_days: int
    snapshot_wait_seconds: int
    request_id: str | None  # the API request (or timer pass) that started it, for the logs


def job_for(env: Environment, settings: Settings) -> Job:
    assert env.operation is not None
    on_aci = settings.compute_backend is ComputeBackendName.ACI
    return Job(
        owner=env.owner,
        environment_id=env.id,
        operation=env.operation,
        deadline_seconds=settings.provision_timeout_seconds,
        poll_seconds=POLL_SECONDS if on_aci else LOCAL_POLL_SECONDS,
        poll_steady_seconds=0 if on_aci else LOCAL_POLL_STEADY_SECONDS,
        poll_max_seconds=POLL_MAX_SECONDS if on_aci else POLL_SECONDS,
        # On ACI the create or start has just answered with the group's state: a poll at once
        # would only ask ARM the same. A local code-server may answer within the second.
        first_poll_waits=on_aci,
        authorization_grace_seconds=AUTHORIZATION_GRACE_SECONDS,
        restore_grace_days=settings.restore_grace_days,
        snapshot_wait_seconds=settings.snapshot_stop_wait_seconds,
        request_id=observability.current("request_id"),
    )


def run_of(env: Environment, settings: Settings) -> dict[str, Any]:
    """The orchestration that carries out the record's current operation: its orchestrator, its
    instance id and its input (started by a client, or as a sub-orchestration)."""
    assert env.operation is not None
    return {
        "orchestrator": orchestrator(env.operation),
        "instance_id": instance_id(env.operation, env.redrives),
        "input": job_for(env, settings),
    }


def forget_job(owner: str, settings: Settings) -> dict[str, object]:
    """The input of an owner's erasure (DELETE /me): who, and the wait between its rounds (the
    local backends settle in seconds: their first poll's wait)."""
    aci = settings.compute_backend is ComputeBackendName.ACI
    return {
        "owner": owner,
        "wait_seconds": FORGET_WAIT_SECONDS if aci else POLL_SECONDS,
        "request_id": observability.current("request_id"),
    }
