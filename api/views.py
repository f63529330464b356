"""Response shapes of the API: documented fields only, never secrets.

Each shape is a TypedDict: mypy checks every view against it, the answer stays a plain dict (no
model to build per request), and pydantic turns the same classes into the OpenAPI document's
schemas (api/openapi.py), so the document cannot drift from what the views return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NotRequired
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from shared.domain import metering
from shared.domain.catalog import Size, Template
from shared.domain.environment import Actor, AuditEvent, Environment, Policy, Status
from shared.domain.meter import MonthUsage
from shared.domain.progress import Phase, Step
from shared.domain.snapshots import Reason, Snapshot
from shared.services.environments import Connection

SHOWN_STATUSES = [s.value for s in Status if s is not Status.DELETED]
CLOSED = ConfigDict(extra="forbid")  # the document says no other field is ever sent


def one_of(values: list[str], description: str) -> Any:
    return Field(description=description, json_schema_extra={"enum": list(values)})


Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Url = Annotated[str, Field(json_schema_extra={"format": "uri"})]
EnvironmentId = Annotated[str, Field(pattern=r"^env-[0-9a-f]{16}$", examples=["env-3f2a9c1b7d4e5a60"])]


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


@with_config(CLOSED)
class ForwardedPort(TypedDict):
    """A dev-server port, previewed through the IDE's own proxy (it needs the IDE login)."""

    port: int
    url: Url


@with_config(CLOSED)
class ProgressStep(TypedDict):
    """A phase a create or start reached: when it began, and when the next one did (null while
    it is the current one)."""

    phase: Annotated[str, one_of([p.value for p in Phase], "In this order; a backend may skip one.")]
    started_at: Moment | None
    ended_at: Moment | None


@with_config(CLOSED)
class UsageView(TypedDict):
    """What the environment has used since it was created (metered from its lifecycle)."""

    compute_seconds: Annotated[float, Field(description="Time in STARTING, RUNNING or STOPPING.")]
    storage_gb_hours: Annotated[float, Field(description="The workspace's quota, for as long as it exists.")]
    cost_to_date: Annotated[float, Field(description="USD, at the region's list prices.")]


@with_config(CLOSED)
class EnvironmentView(TypedDict):
    """A cloud development environment. Secrets and the IDE password are never part of it
    (the owner's `GET .../connection` gives the password)."""

    id: EnvironmentId
    name: str
    status: Annotated[str, one_of(SHOWN_STATUSES, "Where the environment is in its lifecycle.")]
    status_reason: Annotated[str | None, Field(description="Why it is in this status, when known.")]
    template: str
    size: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int
    cloud_provider: Annotated[str, one_of(["AZURE", "LOCAL"], "Where the environment runs.")]
    cloud_region: str
    vs_code_url: Annotated[Url | None, Field(description="The IDE in a browser, once RUNNING.")]
    ssh_connection_string: str | None
    ports: list[int]
    forwarded_ports: list[ForwardedPort]
    environment_variables: dict[str, str]
    repository_url: str | None
    dotfiles_url: str | None
    idle_timeout_minutes: int
    idle_stop_at: Annotated[Moment | None, Field(description="When the idle sweep stops it, if unused.")]
    session_stop_at: Annotated[Moment | None, Field(description="When the session limit stops it.")]
    delete_at: Annotated[Moment | None, Field(description="When retention retires it (unless keep).")]
    keep: Annotated[bool, Field(description="Exempt from retention.")]
    last_accessed_at: Moment | None
    created_at: Moment | None
    updated_at: Moment | None
    stopped_at: Moment | None
    estimated_cost_per_hour: Annotated[float, Field(description="USD per running hour, estimated.")]
    usage: UsageView
    progress: Annotated[
        list[ProgressStep],
        Field(description="The phases of the current (or last) create or start, for a progress bar."),
    ]


@with_config(CLOSED)
class EnvironmentBody(TypedDict):
    environment: EnvironmentView


@with_config(CLOSED)
class EnvironmentList(TypedDict):
    """The caller's environments, oldest first; `next` only when `limit` or `next` was given."""

    environments: list[EnvironmentView]
    next: NotRequired[
        Annotated[str | None, Field(description="The token of the following page; null on the last.")]
    ]


@with_config(CLOSED)
class RetiredView(TypedDict):
    """An environment retention retired, restorable from its snapshot until `restorable_until`."""

    id: EnvironmentId
    name: str
    template: str
    size: str
    status_reason: str | None
    retired_at: Moment | None
    restorable_until: Moment | None


@with_config(CLOSED)
class RetiredList(TypedDict):
    retired_environments: list[RetiredView]


@with_config(CLOSED)
class EventView(TypedDict):
    """One entry of the audit trail: a change of status (or a note that kept it), who and why."""

    from_status: Annotated[str | None, Field(description="null for the first event.")]
    to_status: str
    actor: Annotated[str, one_of([a.value for a in Actor], "Who made the change.")]
    reason: str
    at: Moment | None


@with_config(CLOSED)
class EventList(TypedDict):
    """The audit trail, newest first; `next` only when `limit` or `next` was given."""

    events: list[EventView]
    next: NotRequired[
        Annotated[str | None, Field(description="The token of the following (older) page; null on the last.")]
    ]


@with_config(CLOSED)
class ConnectionView(TypedDict):
    """How to reach a RUNNING environment: the one answer that carries the IDE password."""

    vs_code_url: Url | None
    password: str
    ssh_connection_string: str | None


@with_config(CLOSED)
class TemplateView(TypedDict):
    """A catalog entry, as the product documents' Template model has it."""

    name: str
    display_name: str
    description: str
    image: str
    default_size: str
    default_cpu_cores: float
    default_memory_gb: float
    default_storage_gb: int
    ports: list[int]
    extensions: Annotated[list[str], Field(description="VS Code extensions the image installs.")]
    environment_variables: Annotated[dict[str, str], Field(description="Defaults; a create's own win.")]
    category: str
    tags: list[str]
    icon: Annotated[str | None, Field(description="A name the frontend maps to a picture.")]
    popular: bool
    aliases: Annotated[list[str], Field(description="Other names a create may give.")]


@with_config(CLOSED)
class SizeView(TypedDict):
    name: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int
    estimated_cost_per_hour: float


@with_config(CLOSED)
class Catalog(TypedDict):
    """The templates, and the sizes the configured compute backend can run."""

    templates: list[TemplateView]
    sizes: list[SizeView]


@with_config(CLOSED)
class SnapshotView(TypedDict):
    """A workspace snapshot; `files` and `bytes_added` are null when never reported."""

    id: Annotated[str, Field(pattern=r"^[0-9a-f]{8}$", examples=["4bd1f0c2"])]
    taken_at: Moment | None
    reason: Annotated[str, one_of([r.value for r in Reason], "Why it was taken.")]
    files: int | None
    bytes_added: int | None


@with_config(CLOSED)
class SnapshotList(TypedDict):
    snapshots: list[SnapshotView]


@with_config(CLOSED)
class SnapshotRequestView(TypedDict):
    id: Annotated[str, Field(description="The request's id; the snapshot is listed once taken.")]
    environment_id: EnvironmentId


@with_config(CLOSED)
class SnapshotRequestBody(TypedDict):
    snapshot_request: SnapshotRequestView


@with_config(CLOSED)
class RestoreView(TypedDict):
    environment_id: EnvironmentId
    snapshot: SnapshotView
    on: Annotated[str, one_of(["next start"], "When the snapshot is restored.")]


@with_config(CLOSED)
class RestoreBody(TypedDict):
    restore: RestoreView


@with_config(CLOSED)
class ReportAnswer(TypedDict):
    listed: Annotated[int, Field(description="Snapshots the report listed.")]


@with_config(CLOSED)
class Logs(TypedDict):
    """The end of a container's log, every secret of the environment replaced by [redacted]."""

    logs: str
    container: Annotated[str, one_of(["ide", "tls"], "Whose log.")]
    tail: int


@with_config(CLOSED)
class StatusBody(TypedDict):
    status: str


@with_config(CLOSED)
class ErrorBody(TypedDict):
    """Every refusal and failure: a message for people, a stable code for programs."""

    error: Annotated[str, Field(description="What went wrong, in words a user can act on.")]
    details: Annotated[
        Any,
        Field(description="The fields at fault ([{field, message}]), other facts, or null."),
    ]
    code: Annotated[str, Field(examples=["VALIDATION_ERROR"])]


@with_config(CLOSED)
class Unready(TypedDict):
    status: str
    code: str
    error: str
    details: None


def forwarded_ports(vs_code_url: str | None, ports: list[int]) -> list[ForwardedPort]:
    """Preview URLs of the environment's dev-server ports: code-server's own proxy (`/proxy/<port>/`
    strips the prefix, `/absproxy/<port>/` keeps it) on the IDE's origin, so they need the IDE login
    and ride the IDE's TLS. No port is ever published on its own (ACI allows 5 per IP)."""
    if not vs_code_url:
        return []
    parts = urlsplit(vs_code_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return [{"port": port, "url": f"{origin}/proxy/{port}/"} for port in ports]


def usage_view(usage: MonthUsage) -> UsageView:
    return {
        "compute_seconds": round(usage.compute_seconds, 3),
        "storage_gb_hours": round(usage.storage_gb_hours, 6),
        "cost_to_date": round(usage.cost, 6),
    }


def environment_view(env: Environment, policy: Policy, now: datetime) -> EnvironmentView:
    """The API shape of an environment: documented fields only, never secrets; `usage` as it
    stands at `now`."""
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
        "dotfiles_url": env.dotfiles_url,
        "idle_timeout_minutes": env.idle_timeout_minutes,
        "idle_stop_at": iso(env.idle_stop_at),
        "session_stop_at": iso(env.session_stop_at(policy)),
        "delete_at": iso(env.delete_at(policy)),
        "keep": env.keep,
        "last_accessed_at": iso(env.last_accessed_at),
        "created_at": iso(env.created_at),
        "updated_at": iso(env.updated_at),
        "stopped_at": iso(env.stopped_at),
        "estimated_cost_per_hour": env.estimated_cost_per_hour,
        "usage": usage_view(metering.total(metering.to_date(env, now))),
        "progress": [progress_view(step) for step in env.progress],
    }


def progress_view(step: Step) -> ProgressStep:
    return {"phase": step.phase.value, "started_at": iso(step.started_at), "ended_at": iso(step.ended_at)}


def retired_view(env: Environment) -> RetiredView:
    """The API shape of an environment retention retired, while it can still be restored."""
    return {
        "id": env.id,
        "name": env.name,
        "template": env.template,
        "size": env.size,
        "status_reason": env.status_reason,
        "retired_at": iso(env.updated_at),
        "restorable_until": iso(env.restorable_until),
    }


def event_view(event: AuditEvent) -> EventView:
    return {
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value,
        "actor": event.actor.value,
        "reason": event.reason,
        "at": iso(event.at),
    }


def connection_view(details: Connection) -> ConnectionView:
    """The one response that carries the IDE password (the owner's /connection)."""
    return {
        "vs_code_url": details.vs_code_url,
        "password": details.password,
        "ssh_connection_string": details.ssh_connection_string,
    }


def catalog_view(templates: list[Template], sizes: list[Size]) -> Catalog:
    return {
        "templates": [
            {
                "name": t.name,
                "display_name": t.display_name,
                "description": t.description,
                "image": t.image,
                "default_size": t.default_size,
                "default_cpu_cores": t.size.cpu_cores,
                "default_memory_gb": t.size.memory_gb,
                "default_storage_gb": t.size.storage_gb,
                "ports": list(t.ports),
                "extensions": list(t.extensions),
                "environment_variables": dict(t.environment_variables),
                "category": t.category,
                "tags": list(t.tags),
                "icon": t.icon,
                "popular": t.popular,
                "aliases": list(t.aliases),
            }
            for t in templates
        ],
        "sizes": [
            {
                "name": s.name,
                "cpu_cores": s.cpu_cores,
                "memory_gb": s.memory_gb,
                "storage_gb": s.storage_gb,
                "estimated_cost_per_hour": s.estimated_cost_per_hour,
            }
            for s in sizes
        ],
    }


def snapshot_view(snapshot: Snapshot) -> SnapshotView:
    return {
        "id": snapshot.id,
        "taken_at": iso(snapshot.taken_at),
        "reason": snapshot.reason.value,
        "files": snapshot.files,
        "bytes_added": snapshot.bytes_added,
    }
