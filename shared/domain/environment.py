"""The environment record, its statuses and audit events (pydantic). Plain data: no I/O."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.catalog import estimate_cost_per_hour
from shared.domain.meter import MonthUsage
from shared.domain.progress import Step

ENVIRONMENT_ID = re.compile(r"^env-[0-9a-f]{16}$")


def new_id() -> str:
    return f"env-{secrets.token_hex(8)}"


class Status(StrEnum):
    CREATING = "CREATING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    DELETING = "DELETING"
    DELETED = "DELETED"  # internal: kept for audit and usage, never shown by the API


class Actor(StrEnum):
    USER = "user"
    IDLE_SWEEP = "idle-sweep"
    RECONCILER = "reconciler"
    RETENTION = "retention"
    BUDGET = "budget"
    SYSTEM = "system"


class CloudProvider(StrEnum):
    AZURE = "AZURE"
    LOCAL = "LOCAL"


class SizeChange(BaseModel):
    """Resources a resize asked for while the environment ran: applied when its next start is
    accepted (so the meter charges the old size up to the stop)."""

    model_config = ConfigDict(frozen=True)

    size: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int


class Environment(BaseModel):
    """The stored environment record. `sealed_secrets` and `etag` never reach an API response."""

    model_config = ConfigDict(validate_assignment=True)

    id: str
    owner: str
    name: str
    status: Status
    status_reason: str | None = None
    template: str
    size: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int
    cloud_provider: CloudProvider
    cloud_region: str
    vs_code_url: str | None = None
    ssh_connection_string: str | None = None
    ports: list[int] = Field(default_factory=list)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    repository_url: str | None = None
    dotfiles_url: str | None = None  # the user's dotfiles, installed at every start
    idle_timeout_minutes: int
    last_accessed_at: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    operation: str | None = None
    redrives: int = 0  # times the reconciler re-ran the current operation
    keep: bool = False  # exempt from retention
    agent_token_hash: str | None = Field(default=None, repr=False)
    snapshot: str | None = None  # the workspace snapshot a retired environment can be restored from
    restorable_until: datetime | None = None
    restored_from: str | None = None  # the environment whose snapshot repository seeded this one
    restore_snapshot: str | None = None  # the snapshot the next start restores (None: the latest)
    unclean_stop: str | None = None  # why the last session ended without a final snapshot
    handoff_noted: str | None = None  # the stop whose final-snapshot outcome is in the audit trail
    progress: list[Step] = Field(default_factory=list)  # the phases of the current (or last) create/start
    meter: dict[str, MonthUsage] = Field(default_factory=dict)  # use by month ("2026-12"), metering.py
    metered_at: datetime | None = None  # the meter counts up to here (None: from created_at)
    monthly_budget: float | None = None  # the owner's budget (USD) as of the last create or start
    budget_warned: str | None = None  # the month ("2026-12") whose 80% warning is in the trail
    pending_size: SizeChange | None = None  # a resize asked while RUNNING, for the next start
    setup_problem: str | None = None  # what this run's workspace setup could not do (the agent's report)
    sealed_secrets: str = Field(default="", repr=False)
    version: int = 0
    etag: str | None = Field(default=None, repr=False)

    @property
    def estimated_cost_per_hour(self) -> float:
        return estimate_cost_per_hour(self.cpu_cores, self.memory_gb, self.storage_gb)

    @property
    def idle_stop_at(self) -> datetime | None:
        """When the idle sweep will stop this environment if nobody uses it (RUNNING only)."""
        if self.status is not Status.RUNNING:
            return None
        return self.last_accessed_at + timedelta(minutes=self.idle_timeout_minutes)

    def session_stop_at(self, policy: Policy) -> datetime | None:
        """When the session limit stops this environment however active it is (RUNNING only)."""
        if self.status is not Status.RUNNING or self.started_at is None:
            return None
        return self.started_at + timedelta(hours=policy.max_session_hours)

    def delete_at(self, policy: Policy) -> datetime | None:
        """When retention retires this environment if it stays stopped and untouched."""
        if self.status is not Status.STOPPED or self.keep:
            return None
        return max(self.stopped_at or self.updated_at, self.last_accessed_at) + timedelta(
            days=policy.retention_days
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """The sweeps' limits, from settings: shown on every environment so the frontend can warn."""

    max_session_hours: int = 12
    retention_days: int = 30


class AuditEvent(BaseModel):
    environment_id: str
    from_status: Status | None
    to_status: Status
    actor: Actor
    reason: str
    at: datetime
    # The record's version the event came with: the trail's order (newest first) and where a page
    # of it ends. None until it is stored.
    version: int | None = None
