"""Response shapes of the API: documented fields only, never secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from shared.domain.catalog import Size, Template
from shared.domain.environment import AuditEvent, Environment, Policy
from shared.domain.snapshots import Snapshot
from shared.services.environments import Connection


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


def connection_view(details: Connection) -> dict[str, Any]:
    """The one response that carries the IDE password (the owner's /connection)."""
    return {
        "vs_code_url": details.vs_code_url,
        "password": details.password,
        "ssh_connection_string": details.ssh_connection_string,
    }


def catalog_view(templates: list[Template], sizes: list[Size]) -> dict[str, Any]:
    return {
        "templates": [
            {
                "name": t.name,
                "display_name": t.display_name,
                "description": t.description,
                "image": t.image,
                "default_size": t.default_size,
                "ports": list(t.ports),
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


def snapshot_view(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "taken_at": _iso(snapshot.taken_at),
        "reason": snapshot.reason.value,
        "files": snapshot.files,
        "bytes_added": snapshot.bytes_added,
    }
