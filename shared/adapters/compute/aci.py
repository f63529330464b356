"""`aci` compute: one Azure Container Instances container group per environment.

The group is named by `compute_name()` and carries the tags dev8-env-id, dev8-owner (keyed hash)
and dev8-spec-hash; aci_group.py builds its definition. Every operation is idempotent, because an
activity may run twice:
- create: GET first. The same spec hash is left alone; a different one is deleted and created
  again (ACI cannot change size, ports or volumes in place). Before a PUT, the region's usage is
  read and a full quota fails the operation with a clear reason. The PUT does not wait for the
  long-running operation: the orchestration polls `status` with durable timers instead.
- status: instance view. A group whose provisioning Failed is deleted and reported FAILED with
  the reason ARM gave.
- stop: POST stop (containers deallocated, billing stops). start: begin_start, then the group is
  read again, because the IP (not the FQDN) may change.
- delete: waits for ARM's long-running delete; 404 is done. list: the groups tagged dev8-env-id.

SDK calls run through the ARM client's own retry policy (azure_common.ARM_RETRY); what still fails
becomes Transient/PermanentBackendError. Nothing logged here carries a secret.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.adapters.azure_common import (
    StorageAccountKey,
    account_key,
    azure_errors,
    client_options,
    is_not_found,
)
from shared.adapters.azure_common import (
    credential as default_credential,
)
from shared.adapters.compute import ide_password
from shared.domain.catalog import SSH_PORT
from shared.domain.logs import LogSource
from shared.domain.progress import Phase
from shared.domain.resources import ComputeState
from shared.errors import PermanentBackendError
from shared.services.ports import ComputeSpec, ComputeStatus
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

    from shared.adapters.compute.aci_group import GroupSettings

log = logging.getLogger("dev8.aci")

# Usage names of Microsoft.ContainerInstance/locations/usages.
GROUPS_USAGE = "ContainerGroups"
CORES_USAGE = "StandardCores"
_PENDING_PROVISIONING = frozenset({"Accepted", "Creating", "Pending", "Updating", "Repairing", "Starting"})
_FAILED_PROVISIONING = frozenset({"Failed", "Canceled"})


class AciCompute:
    """A `ComputeBackend` on Azure Container Instances. Thread-safe (the SDK clients are)."""

    def __init__(
        self,
        group: GroupSettings,
        credential: TokenCredential,
        storage_key: StorageAccountKey,
        *,
        transport: HttpTransport[Any, Any] | None = None,
        hash_password: Callable[[str], str] | None = None,
        https_probe: Callable[[str], bool] | None = None,
    ) -> None:
        from azure.mgmt.containerinstance import ContainerInstanceManagementClient

        self._group = group
        self._rg = group.resource_group
        self._storage_key = storage_key
        self._hash_password = hash_password or ide_password.hashed
        self._https_probe = https_probe or https_answers
        self._client = ContainerInstanceManagementClient(
            credential, group.subscription_id, **client_options(transport)
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        transport: HttpTransport[Any, Any] | None = None,
        https_probe: Callable[[str], bool] | None = None,
    ) -> AciCompute:
        """The production wiring; `credential`, `transport` and `https_probe` replace the identity
        and the network (tests plug the HTTP simulators in here)."""
        from shared.adapters.compute.aci_group import GroupSettings

        assert settings.azure_subscription_id and settings.azure_resource_group  # settings validate it
        if not settings.workspace_storage_account:
            raise PermanentBackendError("DEV8_WORKSPACE_STORAGE_ACCOUNT must be set for the aci backend")
        identity = credential or default_credential(settings.managed_identity_client_id)
        group = GroupSettings(
            subscription_id=settings.azure_subscription_id,
            resource_group=settings.azure_resource_group,
            location=settings.azure_location,
            registry=settings.registry,
            image_tag=settings.image_tag,
            storage_account=settings.workspace_storage_account,
            registry_identity_id=settings.registry_identity_id,
            owner_tag_key=owner_tag_key(settings.secrets_key_bytes),
        )
        key = account_key(
            identity,
            settings.azure_subscription_id,
            settings.azure_resource_group,
            settings.workspace_storage_account,
            transport=transport,
        )
        return cls(group, identity, key, transport=transport, https_probe=https_probe)

    # --- ComputeBackend ---------------------------------------------------------------------------

    def create(self, spec: ComputeSpec) -> ComputeStatus:
        from shared.adapters.compute.aci_group import SPEC_HASH_TAG, build_group

        body, digest = build_group(spec, self._group, self._storage_key.get(), self._hash_password)
        existing = self._get(spec.name)
        if existing is not None:
            same = (existing.tags or {}).get(SPEC_HASH_TAG) == digest
            if same and _state(existing) is not ComputeState.FAILED:
                return self._view(existing)  # a re-run: never a second group, never a restart
            log.info("container group %s is failed or has another spec: replacing it", spec.name)
            self.delete(spec.name)
        self._check_quota(spec)
        with azure_errors(f"creating container group {spec.name}"):
            # polling=False: the initial 201 (provisioningState Creating) is the answer; the
            # orchestration polls status() with durable timers rather than block this activity.
            poller = self._client.container_groups.begin_create_or_update(
                self._rg, spec.name, body, polling=False
            )
            created = poller.result()
        log.info("container group %s created (spec %s)", spec.name, digest)
        return self._view(created)

    def status(self, name: str) -> ComputeStatus:
        group = self._get(name)
        if group is None:
            return ComputeStatus(name=name, state=ComputeState.ABSENT)
        if group.provisioning_state in _FAILED_PROVISIONING:
            reason = _failure_reason(group)
            if "mount" in reason.lower():
                # Most often a rotated account key: list it again for the next attempt.
                self._storage_key.forget()
            log.warning("container group %s failed to provision (%s): deleting it", name, reason)
            self.delete(name)  # a failed group still holds quota (and may bill): remove it
            return ComputeStatus(
                name=name, state=ComputeState.FAILED, detail=reason, environment_id=_env_id(group)
            )
        view = self._view(group)
        if (
            view.state is ComputeState.RUNNING
            and view.vs_code_url
            and not self._https_probe(view.vs_code_url)
        ):
            # ARM says Running, but the user's URL is the sidecar's HTTPS: RUNNING only once the
            # certificate is issued and code-server answers behind it.
            return dataclasses.replace(
                view,
                state=ComputeState.PENDING,
                vs_code_url=None,
                ssh_connection_string=None,
                detail=f"waiting for HTTPS at {view.vs_code_url}healthz",
                phase=Phase.CONTAINER_STARTED,
            )
        return (
            dataclasses.replace(view, phase=Phase.IDE_ANSWERING)
            if view.state is ComputeState.RUNNING
            else view
        )

    def start(self, spec: ComputeSpec) -> ComputeStatus:
        from shared.adapters.compute.aci_group import SPEC_HASH_TAG, build_group

        existing = self._get(spec.name)
        if existing is None:
            return self.create(spec)
        _, digest = build_group(spec, self._group, self._storage_key.get(), self._hash_password)
        current = self._view(existing)
        if (existing.tags or {}).get(SPEC_HASH_TAG) != digest or current.state is ComputeState.FAILED:
            return self.create(spec)  # e.g. a new image tag since it stopped: replaced, then started
        if current.state in (ComputeState.RUNNING, ComputeState.PENDING):
            return current  # already up or coming up: a repeated start changes nothing
        with azure_errors(f"starting container group {spec.name}"):
            self._client.container_groups.begin_start(self._rg, spec.name, polling=False).result()
        refreshed = self._get(spec.name)  # the public IP may change on start: read the group again
        if refreshed is None:
            return ComputeStatus(name=spec.name, state=ComputeState.ABSENT)
        started = self._view(refreshed)
        if started.state is ComputeState.STOPPED:
            # ARM accepted the start but the instance view has not caught up yet.
            return ComputeStatus(
                name=spec.name, state=ComputeState.PENDING, environment_id=spec.environment_id
            )
        return started

    def stop(self, name: str) -> ComputeStatus:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_errors(f"stopping container group {name}"):
            try:
                self._client.container_groups.stop(self._rg, name)
            except ResourceNotFoundError:
                return ComputeStatus(name=name, state=ComputeState.ABSENT)
        return ComputeStatus(name=name, state=ComputeState.STOPPED, detail="stopped (deallocated)")

    def delete(self, name: str) -> None:
        from azure.core.exceptions import HttpResponseError

        with azure_errors(f"deleting container group {name}"):
            try:
                # Waits for ARM's long-running delete (polls honour Retry-After), so the share can
                # be deleted next without the group still holding it.
                self._client.container_groups.begin_delete(self._rg, name).result()
            except HttpResponseError as error:
                if not is_not_found(error):
                    raise
        log.info("container group %s deleted", name)

    def list(self) -> builtins.list[ComputeStatus]:
        from shared.adapters.compute.aci_group import ENV_ID_TAG

        with azure_errors("listing container groups"):
            groups = builtins.list(self._client.container_groups.list_by_resource_group(self._rg))
        # The list answer carries no instance view: a group's state here is its provisioning state.
        return [self._view(group) for group in groups if ENV_ID_TAG in (group.tags or {})]

    # --- internals --------------------------------------------------------------------------------

    def logs(self, name: str, source: LogSource, tail: int) -> str:
        """The container's log through ARM (Containers - List Logs; ACI keeps a running group's
        logs only: learn.microsoft.com/azure/container-instances/container-instances-get-logs)."""
        from azure.core.exceptions import ResourceNotFoundError

        from shared.adapters.compute.aci_group import TLS_CONTAINER, WORKSPACE_CONTAINER

        container = WORKSPACE_CONTAINER if source is LogSource.IDE else TLS_CONTAINER
        with azure_errors(f"reading the {source.value} log of {name}"):
            try:
                found = self._client.containers.list_logs(self._rg, name, container, tail=tail)
            except ResourceNotFoundError:
                return ""
        return str(found.content or "")

    def _get(self, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_errors(f"reading container group {name}"):
            try:
                return self._client.container_groups.get(self._rg, name)
            except ResourceNotFoundError:
                return None

    def _check_quota(self, spec: ComputeSpec) -> None:
        """Fail with a clear reason when the region cannot take one more group of this size."""
        location = self._group.location
        try:
            with azure_errors(f"reading Azure Container Instances usage in {location}"):
                usages: dict[str, Any] = {
                    str(getattr(usage.name, "value", "")): usage
                    for usage in self._client.location.list_usage(location)
                }
        except PermanentBackendError as error:
            # E.g. the usage-reader role is missing: the create itself still fails on a full quota.
            log.warning("quota check skipped: %s", error)
            return
        needs = ((GROUPS_USAGE, 1, "container groups"), (CORES_USAGE, math.ceil(spec.cpu_cores), "cores"))
        for usage_name, wanted, label in needs:
            usage = usages.get(usage_name)
            if usage is None or usage.limit is None or usage.current_value is None:
                continue
            if usage.current_value + wanted > usage.limit:
                raise PermanentBackendError(
                    f"Azure Container Instances quota reached in {location}: {usage.current_value} of "
                    f"{usage.limit} {label} in use, this environment needs {wanted} more; "
                    "stop or delete environments, or raise the quota (docs/runbook.md)"
                )

    def _view(self, group: Any) -> ComputeStatus:
        name = str(group.name)
        state = _state(group)
        fqdn = group.ip_address.fqdn if group.ip_address is not None else None
        running = state is ComputeState.RUNNING and bool(fqdn)
        return ComputeStatus(
            name=name,
            state=state if (state is not ComputeState.RUNNING or fqdn) else ComputeState.PENDING,
            vs_code_url=f"https://{fqdn}/" if running else None,
            ssh_connection_string=f"ssh -p {SSH_PORT} dev8@{fqdn}" if running else None,
            detail=group.provisioning_state,
            environment_id=_env_id(group),
            phase=_phase(group),
        )


def _phase(group: Any) -> Phase | None:
    """How far the group has got, from its containers' events: `Pulling` while an image is
    pulled, `Started` once every container started (the events ACI records, as `az container show`
    lists them: learn.microsoft.com/azure/container-instances/container-instances-get-logs)."""
    if group.provisioning_state in _FAILED_PROVISIONING:
        return None
    seen = [
        {str(event.name) for event in (container.instance_view.events or [])}
        for container in group.containers or []
        if container.instance_view is not None
    ]
    if seen and all("Started" in names for names in seen):
        return Phase.CONTAINER_STARTED
    if any("Pulling" in names or "Pulled" in names for names in seen):
        return Phase.IMAGE_PULLING
    return Phase.COMPUTE_REQUESTED


def _state(group: Any) -> ComputeState:
    provisioning = group.provisioning_state
    if provisioning in _FAILED_PROVISIONING:
        return ComputeState.FAILED
    if provisioning == "Deleting":
        return ComputeState.ABSENT
    if provisioning in _PENDING_PROVISIONING:
        return ComputeState.PENDING
    view = group.instance_view
    instance = view.state if view is not None else None
    if instance == "Stopped":
        return ComputeState.STOPPED
    if instance == "Running" and all(_container_running(c) for c in group.containers or []):
        return ComputeState.RUNNING
    if instance == "Failed":
        return ComputeState.FAILED
    return ComputeState.PENDING


def _container_running(container: Any) -> bool:
    view = container.instance_view
    current = view.current_state if view is not None else None
    # The list answer has no per-container view: trust the group's state then.
    return current is None or current.state == "Running"


def _failure_reason(group: Any) -> str:
    """The most telling event ARM recorded (an image pull error, a mount failure...). Any type
    counts: ACI reports a failed mount as a `Normal` event named FailedMount (REST API example
    ContainerGroupsGet_Failed), so the last event named Failed* wins, then the last Warning."""
    events: builtins.list[Any] = []
    for container in group.containers or []:
        if container.instance_view is not None:
            events.extend(container.instance_view.events or [])
    if group.instance_view is not None:
        events.extend(group.instance_view.events or [])
    telling = [e for e in events if e.message and str(e.name or "").startswith("Failed")]
    telling = telling or [e for e in events if e.message and e.type == "Warning"]
    if telling:
        last = telling[-1]
        name = f"{last.name}: " if last.name and not str(last.message).startswith(str(last.name)) else ""
        return f"the container group failed to start: {name}{last.message}"[:300]
    return "the container group failed to provision"


def _env_id(group: Any) -> str | None:
    from shared.adapters.compute.aci_group import ENV_ID_TAG

    value = (group.tags or {}).get(ENV_ID_TAG)
    return str(value) if value else None


def owner_tag_key(secrets_key: bytes) -> bytes:
    """A key of its own for the owner tag, derived from DEV8_SECRETS_KEY (never the key itself)."""
    return hashlib.sha256(b"dev8-owner-tag\x00" + secrets_key).digest()


def https_answers(url: str) -> bool:
    """Whether `{url}healthz` answers 200 over HTTPS with a certificate this machine trusts: the
    sidecar got its certificate and code-server answers behind it (its /healthz needs no login)."""
    import urllib.error
    import urllib.request

    if not url.startswith("https://"):
        return False
    try:
        with urllib.request.urlopen(f"{url}healthz", timeout=5) as answer:  # noqa: S310  # https only
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
