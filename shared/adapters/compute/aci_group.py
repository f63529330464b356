"""The ACI container group of one environment: what the `aci` compute backend PUTs to ARM.

Two containers share the group's network namespace and the workspace share:
- `workspace`: the template's image (code-server on 8080, sshd on 2222);
- `tls`: the dev8-tls sidecar (Caddy), which obtains a certificate for the group's FQDN and
  proxies HTTPS on 443 to 127.0.0.1:8080. ACI serves no TLS itself, so 8080 is never public.

The public IP carries 443, 80 (ACME HTTP-01 and the redirect to https) and 2222 (SSH) only. ACI
allows 5 ports per IP, so a user's dev-server ports are never published: they are preview URLs
through code-server's own authenticated proxy (`/proxy/<port>/`) behind the sidecar's TLS.

Secrets are secure environment variables (ARM never returns them). The IDE password reaches the
group only as an argon2 hash (HASHED_PASSWORD, which code-server reads); the plain value stays in
this process. The group carries a spec hash tag computed over the definition with every secure
value and the storage key left out, so an identical re-run of create leaves the group alone and a
changed definition (image tag, size, ports...) replaces it.

Importing this module imports azure-mgmt-containerinstance: only aci.py imports it, lazily.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from azure.mgmt.containerinstance import models as m

from shared.domain import resources
from shared.domain.catalog import IDE_PORT, SSH_PORT
from shared.domain.resources import TLS_IMAGE, image_reference
from shared.secrets import SNAPSHOT_PASSWORD_KEY
from shared.services.ports import ComputeSpec

ENV_ID_TAG = "dev8-env-id"
OWNER_TAG = "dev8-owner"
SPEC_HASH_TAG = "dev8-spec-hash"
WORKSPACE_CONTAINER = "workspace"
TLS_CONTAINER = "tls"
WORKSPACE_MOUNT = "/workspace"
# With snapshots the working tree stays on the container's own disk at /workspace (symlinks, modes,
# local-disk speed) and the share is mounted beside it, holding the restic repository
# (docker/base/dev8-snapshot-agent). Environments made before snapshots keep the share at /workspace.
SHARE_MOUNT = "/dev8/share"
SNAPSHOT_REPOSITORY = f"{SHARE_MOUNT}/{resources.SNAPSHOT_REPOSITORY}"
SNAPSHOT_CONTROL = f"{SHARE_MOUNT}/{resources.SNAPSHOT_CONTROL}"  # the agent's mailbox
# The sidecar's share of the environment's size; the workspace container requests the rest and
# may burst to the whole size (limits), so the group bills exactly the size the user chose.
SIDECAR_CPU = 0.1
SIDECAR_MEMORY_GB = 0.2
# Only a hash of these reaches ARM: code-server and the entrypoint read HASHED_PASSWORD.
PASSWORD_VARIABLE = "PASSWORD"  # noqa: S105  # a variable name, not a password
HASHED_PASSWORD_VARIABLE = "HASHED_PASSWORD"  # noqa: S105
# A new label in the same resource group gets the same FQDN back (stable URLs across a replace),
# while no other tenant, subscription or group can take the name over once it is released.
DNS_LABEL_SCOPE = "ResourceGroupReuse"
_SECURE_MARK = "<secure>"
# HTTPS (the IDE and its preview URLs), HTTP (ACME HTTP-01 and the redirect), SSH: within ACI's
# "Ports per IP: 5", an unchangeable limit (learn.microsoft.com/azure/container-instances/
# container-instances-resource-and-quota-limits, "Unchangeable (Hard) Limits").
PUBLIC_PORTS = (443, 80, SSH_PORT)


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """Deployment-wide values of every group (from settings)."""

    subscription_id: str
    resource_group: str
    location: str
    registry: str
    image_tag: str
    storage_account: str
    registry_identity_id: str | None
    owner_tag_key: bytes


def dns_label(name: str, subscription_id: str, resource_group: str) -> str:
    """The group name plus a short hash of where it lives: labels are unique per region across all
    of Azure, so two deployments (or subscriptions) creating `dev8-1a2b3c4d` must not collide."""
    where = f"{subscription_id}/{resource_group}".lower().encode()
    return f"{name}-{hashlib.sha256(where).hexdigest()[:6]}"


def owner_tag(owner: str, key: bytes) -> str:
    """A keyed hash of the owner: tags are readable by anyone with Reader on the resource group and
    the owner id (the token's `sub`) may identify a person. Same owner, same tag, so an operator
    holding the key can still group an owner's environments; nobody else can reverse it."""
    return hmac.new(key, owner.encode(), hashlib.sha256).hexdigest()[:32]


def build_group(
    spec: ComputeSpec, group: GroupSettings, storage_key: str, hash_password: Any
) -> tuple[m.ContainerGroup, str]:
    """The container group to PUT and its spec hash. `hash_password(plain) -> str` makes the argon2
    hash (injected so this module stays free of the argon2 import)."""
    label = dns_label(spec.name, group.subscription_id, group.resource_group)
    snapshots = SNAPSHOT_PASSWORD_KEY in spec.secure_environment
    share = SHARE_MOUNT if snapshots else WORKSPACE_MOUNT
    workspace = m.Container(
        name=WORKSPACE_CONTAINER,
        image=spec.image,
        # 8080 is reached by the sidecar over localhost only; the user's ports are reached through
        # code-server's proxy, so none of them needs to be declared here.
        ports=[m.ContainerPort(port=port, protocol="TCP") for port in (IDE_PORT, SSH_PORT)],
        environment_variables=_variables(spec, hash_password, snapshots),
        resources=_resources(spec.cpu_cores - SIDECAR_CPU, spec.memory_gb - SIDECAR_MEMORY_GB, spec),
        volume_mounts=[m.VolumeMount(name="workspace", mount_path=share)],
        # code-server answers /healthz without a password. Liveness waits long enough for a first
        # clone of the repository (the entrypoint clones before it starts code-server).
        liveness_probe=_probe(f"curl -fsS -o /dev/null http://127.0.0.1:{IDE_PORT}/healthz", 300, 30, 3),
        readiness_probe=_probe(f"curl -fsS -o /dev/null http://127.0.0.1:{IDE_PORT}/healthz", 10, 10, 3),
    )
    sidecar = m.Container(
        name=TLS_CONTAINER,
        image=image_reference(group.registry, TLS_IMAGE, group.image_tag),
        ports=[m.ContainerPort(port=443, protocol="TCP"), m.ContainerPort(port=80, protocol="TCP")],
        environment_variables=[
            m.EnvironmentVariable(name="DEV8_DNS_LABEL", value=label),
            m.EnvironmentVariable(name="DEV8_REGION", value=group.location),
            # Certificates persist on the share, so a stop/start does not ask the CA again.
            m.EnvironmentVariable(name="CADDY_STORAGE_DIR", value=f"{share}/.dev8/caddy"),
        ],
        resources=m.ResourceRequirements(
            requests=m.ResourceRequests(cpu=SIDECAR_CPU, memory_in_gb=SIDECAR_MEMORY_GB)
        ),
        volume_mounts=[m.VolumeMount(name="workspace", mount_path=share)],
        liveness_probe=_probe("wget -q -O /dev/null http://127.0.0.1/healthz", 20, 30, 3),
    )
    body = m.ContainerGroup(
        location=group.location,
        os_type="Linux",
        sku="Standard",
        restart_policy="Always",  # code-server or the sidecar exiting is restarted in place
        containers=[workspace, sidecar],
        ip_address=m.IpAddress(
            type="Public",
            ports=[m.Port(port=port, protocol="TCP") for port in PUBLIC_PORTS],
            dns_name_label=label,
            auto_generated_domain_name_label_scope=DNS_LABEL_SCOPE,
        ),
        volumes=[
            m.Volume(
                name="workspace",
                azure_file=m.AzureFileVolume(
                    share_name=spec.workspace.location,
                    storage_account_name=group.storage_account,
                    storage_account_key=storage_key,
                ),
            )
        ],
    )
    if group.registry_identity_id:
        # ACR pull with the workspace pull identity (AcrPull only): no registry password anywhere.
        body.identity = m.ContainerGroupIdentity(
            type="UserAssigned",
            user_assigned_identities={group.registry_identity_id: m.UserAssignedIdentities()},
        )
        body.image_registry_credentials = [
            m.ImageRegistryCredential(server=group.registry, identity=group.registry_identity_id)
        ]
    digest = spec_hash(body)
    body.tags = {
        ENV_ID_TAG: spec.environment_id,
        OWNER_TAG: owner_tag(spec.owner, group.owner_tag_key),
        SPEC_HASH_TAG: digest,
    }
    return body, digest


def spec_hash(body: m.ContainerGroup) -> str:
    """A hash of what the group is, without secrets: secure values are replaced by a mark (their
    names still count), the storage key by a short digest of it, and the tags are left out. The
    key counts because a group keeps the key it was created with: after a rotation, a stopped
    group would fail to mount on start, so a new key must replace the group."""
    document = _redacted(body.serialize())
    document.pop("tags", None)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _redacted(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _redact(key, value) for key, value in node.items()}
    if isinstance(node, list):
        return [_redacted(item) for item in node]
    return node


def _redact(key: str, value: Any) -> Any:
    if key == "secureValue":
        return _SECURE_MARK
    if key == "storageAccountKey":
        return f"{_SECURE_MARK}{hashlib.sha256(str(value).encode()).hexdigest()[:12]}"
    return _redacted(value)


def _variables(spec: ComputeSpec, hash_password: Any, snapshots: bool) -> list[m.EnvironmentVariable]:
    plain = dict(spec.environment_variables)
    if snapshots:
        plain["DEV8_SNAPSHOT_REPOSITORY"] = SNAPSHOT_REPOSITORY
        plain["DEV8_SNAPSHOT_CONTROL"] = SNAPSHOT_CONTROL
    variables = [m.EnvironmentVariable(name=name, value=value) for name, value in sorted(plain.items())]
    for name, value in sorted(spec.secure_environment.items()):
        if name == PASSWORD_VARIABLE:
            variables.append(
                m.EnvironmentVariable(name=HASHED_PASSWORD_VARIABLE, secure_value=str(hash_password(value)))
            )
        else:
            variables.append(m.EnvironmentVariable(name=name, secure_value=value))
    return variables


def _resources(cpu: float, memory_gb: float, spec: ComputeSpec) -> m.ResourceRequirements:
    return m.ResourceRequirements(
        # One decimal place, as ACI takes them (`az container create --cpu/--memory`).
        requests=m.ResourceRequests(cpu=round(max(cpu, 0.1), 1), memory_in_gb=round(max(memory_gb, 0.1), 1)),
        limits=m.ResourceLimits(cpu=spec.cpu_cores, memory_in_gb=spec.memory_gb),
    )


def _probe(command: str, initial_delay: int, period: int, failures: int) -> m.ContainerProbe:
    return m.ContainerProbe(
        exec_property=m.ContainerExec(command=["/bin/sh", "-c", command]),
        initial_delay_seconds=initial_delay,
        period_seconds=period,
        failure_threshold=failures,
        timeout_seconds=5,
    )
