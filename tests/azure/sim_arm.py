"""Azure Resource Manager, as far as Dev8 uses it, behind an azure-core transport:
Microsoft.ContainerInstance container groups (PUT, GET, list, POST start/stop, DELETE, async
operations), location usages, and Microsoft.Storage listKeys.

Container groups behave like ACI's:
- PUT first applies Azure's documented limits (tests/azure/azure_rules.py: ports per IP, CPU and
  memory, names, variables, volumes...) and refuses a body that breaks one with ARM's error
  shape. Otherwise it answers 201 with provisioningState Creating and an Azure-AsyncOperation
  header (200 when the group existed: an update). Secure values and the storage key are accepted
  and never returned. The group reaches Succeeded/Running after `boot_polls` GETs (or
  `boot_seconds` of virtual time), or Failed when its image contains "broken" (a Warning event)
  or its name is in `fail_provisioning`, or when the share's storage key is not the account's
  current key (a FailedMount event of type Normal, as ACI reports it).
- POST stop answers 204 (instance view Stopped); POST start answers 202 with an
  Azure-AsyncOperation and the instance view goes Pending, then Running after `boot_polls` GETs.
- DELETE answers per `delete_mode`: "async" 202 + Azure-AsyncOperation (the group is Deleting
  until the operation is polled to Succeeded), "sync" 200 with the group, "nocontent" 204; a
  missing group answers `missing_delete_status` (404, or 204 like ARM often does).
- the FQDN follows the reuse policy: `{label}.{hash}.{region}.azurecontainer.io` (hash of label,
  subscription and resource group for ResourceGroupReuse), `{label}.{region}...` for Unsecure.
"""

from __future__ import annotations

import copy
import hashlib
import math
import uuid
from dataclasses import dataclass
from typing import Any

from tests.azure.azure_rules import arm_violation
from tests.azure.sim_base import Recorded, Reply, SimTransport, _error_body

ARM = "https://management.azure.com"
STORAGE_KEY = "c2ltdWxhdGVkLXN0b3JhZ2UtYWNjb3VudC1rZXktZm9yLXRlc3RzLW9ubHk="


@dataclass
class _Group:
    body: dict[str, Any]  # as PUT, secure values included (kept to let tests inspect them)
    polls_left: int
    phase: str  # creating | starting | running | stopped | failed | deleting
    failure: str | None = None  # why it failed, while phase is "failed"
    since: float = 0.0  # (virtual) time the current phase began


@dataclass
class _Operation:
    polls_left: int
    on_done: Any  # callable run when the operation completes


class ArmSimulator(SimTransport):
    def __init__(
        self,
        subscription_id: str,
        resource_group: str,
        *,
        boot_polls: int = 2,
        operation_polls: int = 1,
        delete_mode: str = "async",
        missing_delete_status: int = 404,
        seed: int = 0,
        clock: Any = None,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.boot_polls = boot_polls
        self.boot_seconds: float | None = None  # when set, groups boot after this much (virtual) time
        self.operation_polls = operation_polls
        self.delete_mode = delete_mode
        self.missing_delete_status = missing_delete_status
        self.groups: dict[str, _Group] = {}
        self.operations: dict[str, _Operation] = {}
        self.fail_provisioning: dict[str, str] = {}
        self.limits = {"ContainerGroups": 100, "StandardCores": 100}
        self.extra_usage = {"ContainerGroups": 0, "StandardCores": 0}
        self.created: list[str] = []  # names, once per group brought into existence
        self.container_logs: dict[tuple[str, str], str] = {}  # (group, container) -> what it wrote
        self.storage_key = STORAGE_KEY
        self.tls_broken: set[str] = set()
        self.https_probes: list[str] = []
        self.refused: list[tuple[str, str]] = []  # (rule, group) of every PUT refused by a limit

    # --- routing ----------------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Reply:
        parts = [p for p in request.path.split("/") if p]
        lowered = [p.lower() for p in parts]
        if "operations" in lowered and request.method == "GET":
            return self._operation(parts[-1])
        if lowered[-1:] == ["usages"] and request.method == "GET":
            return self._usages(parts[lowered.index("locations") + 1])
        if lowered[-1:] == ["listkeys"] and request.method == "POST":
            return Reply(
                200, {"keys": [{"keyName": "key1", "value": self.storage_key, "permissions": "FULL"}]}
            )
        if "containergroups" in lowered:
            index = lowered.index("containergroups")
            if parts[2].lower() != "resourcegroups" or parts[3] != self.resource_group:
                return Reply(404, _error_body("ResourceGroupNotFound", "no such resource group"))
            rest = parts[index + 1 :]
            if not rest:
                return self._list()
            name = rest[0]
            action = rest[1].lower() if len(rest) > 1 else None
            if (
                action == "containers"
                and len(rest) == 4
                and rest[3].lower() == "logs"
                and request.method == "GET"
            ):
                return self._logs(name, rest[2], request.query.get("tail"))
            if action in ("start", "stop") and request.method == "POST":
                return self._start(name) if action == "start" else self._stop(name)
            if action is None:
                handler = {"GET": self._get, "PUT": self._put, "DELETE": self._delete}.get(request.method)
                if handler is not None:
                    return handler(name, request) if request.method == "PUT" else handler(name)
        return Reply(400, _error_body("UnsupportedBySimulator", f"{request.method} {request.path}"))

    # --- container groups -------------------------------------------------------------------------

    def _put(self, name: str, request: Recorded) -> Reply:
        body = copy.deepcopy(request.body)
        violation = arm_violation(name, body)
        if violation is not None:
            rule, message = violation
            self.refused.append((rule.name, name))
            return Reply(rule.status, _error_body(rule.code, message))
        existing = self.groups.get(name)
        if existing is not None and existing.phase == "deleting":
            return Reply(409, _error_body("ContainerGroupTransitioning", "the group is being deleted"))
        group = _Group(body=body, polls_left=self.boot_polls, phase="creating", since=request.at)
        self.groups[name] = group
        if existing is None:
            self.created.append(name)
        return Reply(201 if existing is None else 200, self._view(name), self._async_header(lambda: None))

    def _get(self, name: str) -> Reply:
        group = self.groups.get(name)
        if group is None:
            return _not_found(name)
        if group.phase in ("creating", "starting"):
            if self.boot_seconds is not None:
                booted = self.now() - group.since >= self.boot_seconds
            else:
                booted = group.polls_left <= 0
                group.polls_left -= 1
            if booted:
                group.phase = "failed" if self._fails(name, group) else "running"
        return Reply(200, self._view(name))

    def _logs(self, name: str, container: str, tail: str | None) -> Reply:
        """Containers - List Logs: {"content": "..."}, the last `tail` lines when given."""
        group = self.groups.get(name)
        if group is None:
            return _not_found(name)
        names = [c["name"] for c in group.body["properties"]["containers"]]
        if container not in names:
            return Reply(404, _error_body("ContainerNotFound", f"container {container} not found in {name}"))
        lines = self.container_logs.get((name, container), "").splitlines()
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        return Reply(200, {"content": "\n".join(lines)})

    def _list(self) -> Reply:
        views = [self._view(name, instance_view=False) for name in self.groups]
        return Reply(200, {"value": views})

    def _start(self, name: str) -> Reply:
        group = self.groups.get(name)
        if group is None:
            return _not_found(name)
        if group.phase in ("creating", "starting", "deleting"):
            return Reply(409, _error_body("ContainerGroupTransitioning", "an operation is in progress"))
        if group.phase != "running":
            group.phase, group.polls_left, group.since = "starting", self.boot_polls, self.now()
        return Reply(202, None, self._async_header(lambda: None))

    def _stop(self, name: str) -> Reply:
        group = self.groups.get(name)
        if group is None:
            return _not_found(name)
        if group.phase == "deleting":
            return Reply(409, _error_body("ContainerGroupTransitioning", "the group is being deleted"))
        group.phase = "stopped"
        return Reply(204)

    def _delete(self, name: str) -> Reply:
        group = self.groups.get(name)
        if group is None or group.phase == "deleting":
            if group is not None:
                return Reply(202, None, self._async_header(lambda: self.groups.pop(name, None)))
            return _not_found(name) if self.missing_delete_status == 404 else Reply(204)
        if self.delete_mode == "sync":
            view = self._view(name)
            del self.groups[name]
            return Reply(200, view)
        if self.delete_mode == "nocontent":
            del self.groups[name]
            return Reply(204)
        group.phase = "deleting"
        return Reply(202, None, self._async_header(lambda: self.groups.pop(name, None)))

    # --- async operations and usages --------------------------------------------------------------

    def _async_header(self, on_done: Any) -> dict[str, str]:
        op_id = uuid.UUID(int=self.random.getrandbits(128)).hex
        self.operations[op_id] = _Operation(self.operation_polls, on_done)
        url = (
            f"{ARM}/subscriptions/{self.subscription_id}/providers/Microsoft.ContainerInstance/"
            f"locations/eastus/operations/{op_id}?api-version=2023-05-01"
        )
        return {"Azure-AsyncOperation": url}

    def _operation(self, op_id: str) -> Reply:
        operation = self.operations.get(op_id)
        if operation is None:
            return Reply(404, _error_body("OperationNotFound", op_id))
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return Reply(200, {"status": "InProgress"}, {"Retry-After": "3"})
        if operation.on_done is not None:
            operation.on_done()
            operation.on_done = None
        return Reply(200, {"status": "Succeeded"})

    def _usages(self, location: str) -> Reply:
        groups = len(self.groups) + self.extra_usage["ContainerGroups"]
        cores = self.extra_usage["StandardCores"] + sum(
            math.ceil(_group_cpu(group.body)) for group in self.groups.values()
        )
        values = [
            _usage("ContainerGroups", "Container Groups", groups, self.limits["ContainerGroups"]),
            _usage("StandardCores", "Standard Cores", cores, self.limits["StandardCores"]),
            _usage("StandardK80Cores", "K80 GPU Cores", 0, 0),
        ]
        return Reply(200, {"value": values})

    # --- views ------------------------------------------------------------------------------------

    def _fails(self, name: str, group: _Group) -> bool:
        """Decide, as the group boots, whether it fails and why (kept on the group)."""
        images = [c["properties"]["image"] for c in group.body["properties"]["containers"]]
        if any("broken" in image for image in images) and name not in self.fail_provisioning:
            self.fail_provisioning[name] = f"Failed to pull image {images[0]!r}: manifest unknown"
        keys = [
            (volume.get("azureFile") or {}).get("storageAccountKey")
            for volume in group.body["properties"].get("volumes", [])
        ]
        group.failure = self.fail_provisioning.get(name)
        if group.failure is None and any(key is not None and key != self.storage_key for key in keys):
            # Mounted at every boot with the key the group holds: re-checked each time.
            group.failure = (
                "FailedMount: Failed to mount Azure File Volume: mount error(13): Permission denied"
            )
        return group.failure is not None

    def https_answers(self, url: str) -> bool:
        """What `https://<fqdn>/healthz` would answer: the group runs and its TLS sidecar serves
        (a group named in `tls_broken` never gets HTTPS, like a sidecar that cannot bind 443)."""
        self.https_probes.append(url)
        for name, group in self.groups.items():
            if url == f"https://{self.fqdn(name)}/":
                return group.phase == "running" and name not in self.tls_broken
        return False

    def rotate_key(self, new_key: str) -> None:
        """Regenerate the account key: listKeys answers the new one and mounts with the old fail."""
        self.storage_key = new_key

    def fqdn(self, name: str) -> str | None:
        group = self.groups.get(name)
        if group is None:
            return None
        ip = group.body["properties"].get("ipAddress") or {}
        label = ip.get("dnsNameLabel")
        if not label:
            return None
        location = group.body.get("location", "eastus")
        scope = ip.get("autoGeneratedDomainNameLabelScope", "Unsecure")
        if scope == "Unsecure":
            return f"{label}.{location}.azurecontainer.io"
        salt = f"{label}/{scope}/{self.subscription_id}/{self.resource_group}".lower().encode()
        return f"{label}.{hashlib.sha256(salt).hexdigest()[:8]}.{location}.azurecontainer.io"

    def _view(self, name: str, *, instance_view: bool = True) -> dict[str, Any]:
        group = self.groups[name]
        view = copy.deepcopy(group.body)
        properties = view.setdefault("properties", {})
        # ARM never returns secrets.
        for container in properties.get("containers", []):
            for variable in container.get("properties", {}).get("environmentVariables", []):
                if "secureValue" in variable:
                    variable.pop("secureValue")
        for volume in properties.get("volumes", []):
            (volume.get("azureFile") or {}).pop("storageAccountKey", None)
        view["id"] = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.ContainerInstance/containerGroups/{name}"
        )
        view["name"] = name
        view["type"] = "Microsoft.ContainerInstance/containerGroups"
        provisioning, state, container_state = {
            "creating": ("Creating", None, "Waiting"),
            "starting": ("Succeeded", "Pending", "Waiting"),
            "running": ("Succeeded", "Running", "Running"),
            "stopped": ("Succeeded", "Stopped", "Terminated"),
            "failed": ("Failed", "Failed", "Waiting"),
            "deleting": ("Deleting", "Running", "Running"),
        }[group.phase]
        properties["provisioningState"] = provisioning
        if "ipAddress" in properties:
            properties["ipAddress"]["fqdn"] = self.fqdn(name)
            properties["ipAddress"]["ip"] = None if group.phase == "stopped" else "20.0.0.7"
        if instance_view:
            events = []
            if group.phase == "failed":
                reason = group.failure or "failed"
                # ACI reports a failed mount as a Normal event (swagger example ContainerGroupsGet_Failed).
                kind, event = (
                    ("Normal", "FailedMount") if reason.startswith("FailedMount") else ("Warning", "Failed")
                )
                events = [{"type": kind, "name": event, "message": reason}]
            properties["instanceView"] = {"state": state, "events": events}
            # Each container's events as ACI records them while it comes up: Pulling, Pulled,
            # Started (learn.microsoft.com/azure/container-instances/container-instances-get-logs).
            # The image pull begins after the first poll (or any virtual time) of a create or start.
            pulling = (
                group.polls_left < self.boot_polls if self.boot_seconds is None else self.now() > group.since
            )
            came_up = {"running": ["Pulling", "Pulled", "Started"]}
            if pulling:
                came_up.update(creating=["Pulling"], starting=["Pulling"])
            for container in properties.get("containers", []):
                container["properties"]["instanceView"] = {
                    "restartCount": 0,
                    "currentState": {"state": container_state},
                    "events": [
                        {
                            "type": "Normal",
                            "name": name,
                            "message": f"{name} ({container['name']})",
                            "count": 1,
                        }
                        for name in came_up.get(group.phase, [])
                    ],
                }
        return view

    # --- test helpers -----------------------------------------------------------------------------

    def put_bodies(self, name: str | None = None) -> list[Any]:
        return [r.body for r in self.of("PUT", "/containerGroups/") if name is None or r.path.endswith(name)]

    def stored(self, name: str) -> dict[str, Any]:
        return self.groups[name].body


def _not_found(name: str) -> Reply:
    return Reply(
        404,
        _error_body(
            "ResourceNotFound",
            f"The Resource 'Microsoft.ContainerInstance/containerGroups/{name}' was not found.",
        ),
    )


def _usage(value: str, label: str, current: int, limit: int) -> dict[str, Any]:
    return {
        "unit": "Count",
        "currentValue": current,
        "limit": limit,
        "name": {"value": value, "localizedValue": label},
    }


def _group_cpu(body: dict[str, Any]) -> float:
    return sum(c["properties"]["resources"]["requests"]["cpu"] for c in body["properties"]["containers"])
