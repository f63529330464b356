"""The cloud resources of one environment: their deterministic names, the image they run and the
state its compute can be in. Deterministic names let a re-run activity find what an earlier run
made."""

from __future__ import annotations

from enum import StrEnum

TLS_IMAGE = "dev8-tls"  # the HTTPS sidecar of an ACI container group (docker/tls)
# Folders of a workspace's share: the snapshot agent's restic repository and its mailbox.
SNAPSHOT_REPOSITORY = "snapshots"
SNAPSHOT_CONTROL = "control"


class ComputeState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"
    ABSENT = "absent"


def compute_name(environment_id: str) -> str:
    return f"dev8-{environment_id.removeprefix('env-')}"


def workspace_name(environment_id: str) -> str:
    return f"ws-{environment_id.removeprefix('env-')}"


def image_reference(registry: str, image: str, tag: str) -> str:
    """`registry/image:tag`, the one way every workspace and sidecar image is named."""
    return f"{registry.rstrip('/')}/{image}:{tag}"
