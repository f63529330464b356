"""Domain records and API request models (pydantic). Plain data: no I/O, no SDK imports."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.catalog import RESERVED_PORTS, estimate_cost_per_hour

ENVIRONMENT_ID = re.compile(r"^env-[0-9a-f]{16}$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VARIABLES = 50
MAX_VARIABLE_VALUE = 4096
MAX_VARIABLES_TOTAL = 32 * 1024
MAX_SECRETS = 20
MAX_SECRET_VALUE = 16 * 1024
MAX_USER_PORTS = 10
# Names the platform sets inside a workspace; a user may not shadow them.
RESERVED_VARIABLES = frozenset(
    {"PASSWORD", "HASHED_PASSWORD", "HOME", "USER", "PATH", "SHELL", "PORT", "HOSTNAME", "PWD", "LANG"}
)
RESERVED_PREFIXES = ("DEV8_", "CODE_SERVER_", "VSCODE_", "AZURE_")


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
    SYSTEM = "system"


class CloudProvider(StrEnum):
    AZURE = "AZURE"
    LOCAL = "LOCAL"


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
    restored_from: str | None = None  # the retired environment whose snapshot seeded this one
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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def forwarded_ports(vs_code_url: str | None, ports: list[int]) -> list[dict[str, Any]]:
    """Preview URLs of the environment's dev-server ports: code-server's own proxy (`/proxy/<port>/`
    strips the prefix, `/absproxy/<port>/` keeps it) on the IDE's origin, so they need the IDE login
    and ride the IDE's TLS. No port is ever published on its own (ACI allows 5 per IP)."""
    if not vs_code_url:
        return []
    parts = urlsplit(vs_code_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return [{"port": port, "url": f"{origin}/proxy/{port}/"} for port in ports]


def environment_view(env: Environment, policy: Policy) -> dict[str, Any]:
    """The API shape of an environment: documented fields only, never secrets."""
    return {
        "id": env.id,
        "name": env.name,
        "status": env.status.value,
        "status_reason": env.status_reason,
        "template": env.template,
        "size": env.size,
        "cpu_cores": env.cpu_cores,
        "memory_gb": env.memory_gb,
        "storage_gb": env.storage_gb,
        "cloud_provider": env.cloud_provider.value,
        "cloud_region": env.cloud_region,
        "vs_code_url": env.vs_code_url,
        "ssh_connection_string": env.ssh_connection_string,
        "ports": list(env.ports),
        "forwarded_ports": forwarded_ports(env.vs_code_url, env.ports),
        "environment_variables": dict(env.environment_variables),
        "repository_url": env.repository_url,
        "idle_timeout_minutes": env.idle_timeout_minutes,
        "idle_stop_at": _iso(env.idle_stop_at),
        "session_stop_at": _iso(env.session_stop_at(policy)),
        "delete_at": _iso(env.delete_at(policy)),
        "keep": env.keep,
        "last_accessed_at": _iso(env.last_accessed_at),
        "created_at": _iso(env.created_at),
        "updated_at": _iso(env.updated_at),
        "stopped_at": _iso(env.stopped_at),
        "estimated_cost_per_hour": env.estimated_cost_per_hour,
    }


def retired_view(env: Environment) -> dict[str, Any]:
    """The API shape of an environment retention retired, while it can still be restored."""
    return {
        "id": env.id,
        "name": env.name,
        "template": env.template,
        "size": env.size,
        "status_reason": env.status_reason,
        "retired_at": _iso(env.updated_at),
        "restorable_until": _iso(env.restorable_until),
    }


def event_view(event: AuditEvent) -> dict[str, Any]:
    return {
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value,
        "actor": event.actor.value,
        "reason": event.reason,
        "at": _iso(event.at),
    }


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_variable_name(name: str, kind: str) -> None:
    if not VARIABLE_NAME.match(name):
        raise ValueError(f"{kind} name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
    if name.upper() in RESERVED_VARIABLES or name.upper().startswith(RESERVED_PREFIXES):
        raise ValueError(f"{kind} name {name!r} is reserved")


class CreateEnvironmentRequest(_Strict):
    name: str = Field(min_length=1, max_length=50)
    template: str | None = Field(default=None, max_length=40)
    base_image: str | None = Field(default=None, max_length=40)
    size: str | None = Field(default=None, max_length=20)
    cpu_cores: float | None = Field(default=None, gt=0)
    memory_gb: float | None = Field(default=None, gt=0)
    storage_gb: int | None = Field(default=None, gt=0)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    ports: list[int] | None = None
    idle_timeout_minutes: int | None = Field(default=None, ge=5, le=240)
    repository_url: str | None = Field(default=None, max_length=2048)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("name must be printable text")
        return value

    @field_validator("environment_variables")
    @classmethod
    def _valid_variables(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_VARIABLES:
            raise ValueError(f"at most {MAX_VARIABLES} environment variables")
        total = 0
        for name, text in value.items():
            _check_variable_name(name, "environment variable")
            if len(text) > MAX_VARIABLE_VALUE:
                raise ValueError(f"environment variable {name!r} is longer than {MAX_VARIABLE_VALUE}")
            total += len(name) + len(text)
        if total > MAX_VARIABLES_TOTAL:
            raise ValueError(f"environment variables exceed {MAX_VARIABLES_TOTAL} characters in all")
        return value

    @field_validator("secrets")
    @classmethod
    def _valid_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_SECRETS:
            raise ValueError(f"at most {MAX_SECRETS} secrets")
        for name, text in value.items():
            _check_variable_name(name, "secret")
            if len(text) > MAX_SECRET_VALUE:
                raise ValueError(f"secret {name!r} is longer than {MAX_SECRET_VALUE}")
        return value

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(value) > MAX_USER_PORTS:
            raise ValueError(f"at most {MAX_USER_PORTS} ports")
        for port in value:
            if not 1024 <= port <= 65535:
                raise ValueError(f"port {port} must be between 1024 and 65535")
            if port in RESERVED_PORTS:
                raise ValueError(f"port {port} is reserved for the IDE or SSH")
        if len(set(value)) != len(value):
            raise ValueError("ports must be unique")
        return value

    @field_validator("repository_url")
    @classmethod
    def _https_repository(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("repository_url must be an https URL")
        if parts.username or parts.password:
            raise ValueError("repository_url must not carry credentials; pass a token in secrets")
        return value

    @model_validator(mode="after")
    def _template_aliases_agree(self) -> CreateEnvironmentRequest:
        if self.template and self.base_image and self.template.lower() != self.base_image.lower():
            raise ValueError("template and base_image differ; give one of them")
        overlap = set(self.secrets) & set(self.environment_variables)
        if overlap:
            raise ValueError(f"names given both as secret and environment variable: {sorted(overlap)}")
        return self


class UpdateEnvironmentRequest(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    idle_timeout_minutes: int | None = Field(default=None, ge=5, le=240)
    keep: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateEnvironmentRequest:
        if self.name is None and self.idle_timeout_minutes is None and self.keep is None:
            raise ValueError("give at least one of: name, idle_timeout_minutes, keep")
        if self.name is not None and not self.name.isprintable():
            raise ValueError("name must be printable text")
        return self
