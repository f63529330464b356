"""What Azure refuses, as one table: the simulators apply these rules and answer as Azure does.

Each rule names the page it comes from. Where Azure documents a limit but not the error code it
answers with, the code is the one ARM uses for that class of error (`InvalidRequestContent`,
`InvalidResourceName`) and the rule says so (`code_documented=False`); the live test
(tests/azure/test_live.py) is where a real subscription confirms it.

ARM rules see the container group PUT body (its JSON as the SDK serialised it) and the group's name;
Files rules see the share operation. A rule returns None when the request is fine, else a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACI_LIMITS = "learn.microsoft.com/azure/container-instances/container-instances-resource-and-quota-limits"
ACI_GROUPS = "learn.microsoft.com/azure/container-instances/container-instances-container-groups"
NAME_RULES = "learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules"
ACI_REST = "learn.microsoft.com/rest/api/container-instances/container-groups/create-or-update"
AZ_CONTAINER = "learn.microsoft.com/cli/azure/container#az-container-create (--cpu, --memory)"
EXECVE = "man7.org/linux/man-pages/man2/execve.2.html (MAX_ARG_STRLEN)"
SHARE_NAMES = "learn.microsoft.com/rest/api/storageservices/naming-and-referencing-shares--directories--files--and-metadata"  # noqa: E501
FILES_SCALE = "learn.microsoft.com/azure/storage/files/storage-files-scale-targets"

# ARM's and ACI's numbers (see the pages above).
MAX_PORTS_PER_IP = 5
MAX_CONTAINERS = 60
MAX_VOLUMES = 20
LINUX_MAX_CPU = 4.0  # standard SKU, Linux, general deployments
LINUX_MAX_MEMORY_GB = 16.0
GROUP_MIN_CPU = 1.0
GROUP_MIN_MEMORY_GB = 1.0
MAX_VARIABLE_BYTES = 131072  # one "NAME=value" string of a process environment (Linux)
# Azure Files (standard account without large file shares; a premium or LFS account goes higher).
SHARE_MIN_GIB = 1
SHARE_MAX_GIB = 5120
MAX_SHARE_SNAPSHOTS = 200

_DNS_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){0,61}[a-z0-9]$|^[a-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$")
_SHARE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    status: int
    code: str
    check: Callable[..., str | None]
    code_documented: bool = False


# --- helpers over the serialised container group -------------------------------------------------


def _containers(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body.get("properties", {}).get("containers") or [])


def _props(container: dict[str, Any]) -> dict[str, Any]:
    return dict(container.get("properties") or {})


def _requests(container: dict[str, Any]) -> dict[str, float]:
    return dict((_props(container).get("resources") or {}).get("requests") or {})


def _limits(container: dict[str, Any]) -> dict[str, float]:
    return dict((_props(container).get("resources") or {}).get("limits") or {})


def _total(body: dict[str, Any], key: str) -> float:
    return round(sum(float(_requests(c).get(key, 0)) for c in _containers(body)), 6)


def _one_decimal(value: float) -> bool:
    return abs(value * 10 - round(value * 10)) < 1e-9


# --- container group rules -----------------------------------------------------------------------


def _group_name(name: str, body: dict[str, Any]) -> str | None:
    if not _DNS_NAME.match(name) or len(name) > 63:
        return (
            f"The container group name '{name}' is invalid: 1-63 lowercase letters, numbers and "
            "single hyphens, not at either end."
        )
    return None


def _container_names(name: str, body: dict[str, Any]) -> str | None:
    names = [str(c.get("name", "")) for c in _containers(body)]
    for container in names:
        if not _DNS_NAME.match(container) or len(container) > 63:
            return f"The container name '{container}' is invalid."
    if len(set(names)) != len(names):
        return "Container names must be unique within a container group."
    return None


def _container_count(name: str, body: dict[str, Any]) -> str | None:
    count = len(_containers(body))
    if not 1 <= count <= MAX_CONTAINERS:
        return f"A container group has 1 to {MAX_CONTAINERS} containers; this one has {count}."
    return None


def _ports_per_ip(name: str, body: dict[str, Any]) -> str | None:
    ports = (body.get("properties", {}).get("ipAddress") or {}).get("ports") or []
    if len(ports) > MAX_PORTS_PER_IP:
        return f"The IP address has {len(ports)} ports; at most {MAX_PORTS_PER_IP} are allowed per IP."
    return None


def _ip_ports_exposed(name: str, body: dict[str, Any]) -> str | None:
    ip_ports = {p.get("port") for p in (body.get("properties", {}).get("ipAddress") or {}).get("ports") or []}
    exposed = {p.get("port") for c in _containers(body) for p in _props(c).get("ports") or []}
    missing = sorted(port for port in ip_ports - exposed if port is not None)
    if missing:
        return f"The ports {missing} of the IP address are not exposed by any container of the group."
    return None


def _group_maximum(name: str, body: dict[str, Any]) -> str | None:
    cpu, memory = _total(body, "cpu"), _total(body, "memoryInGB")
    if cpu > LINUX_MAX_CPU or memory > LINUX_MAX_MEMORY_GB:
        return (
            f"The requested resource (CPU {cpu:g}, memory {memory:g} GB) exceeds the limit of a Linux "
            f"container group (CPU {LINUX_MAX_CPU:g}, memory {LINUX_MAX_MEMORY_GB:g} GB)."
        )
    return None


def _group_minimum(name: str, body: dict[str, Any]) -> str | None:
    cpu, memory = _total(body, "cpu"), _total(body, "memoryInGB")
    if cpu < GROUP_MIN_CPU or memory < GROUP_MIN_MEMORY_GB:
        return (
            f"A container group needs at least {GROUP_MIN_CPU:g} CPU and {GROUP_MIN_MEMORY_GB:g} GB; "
            f"got {cpu:g} and {memory:g}."
        )
    return None


def _container_resources(name: str, body: dict[str, Any]) -> str | None:
    cpu, memory = _total(body, "cpu"), _total(body, "memoryInGB")
    for container in _containers(body):
        requests, limits = _requests(container), _limits(container)
        for key in ("cpu", "memoryInGB"):
            if key not in requests or float(requests[key]) <= 0:
                return f"Container '{container.get('name')}' must request a positive {key}."
            for value in (requests.get(key), limits.get(key)):
                if value is not None and not _one_decimal(float(value)):
                    return (
                        f"Container '{container.get('name')}' {key} {value} has more than one decimal place."
                    )
        if float(limits.get("cpu", 0)) > cpu or float(limits.get("memoryInGB", 0)) > memory:
            return f"The limits of container '{container.get('name')}' exceed the resources of the group."
        if float(limits.get("cpu", requests["cpu"])) < float(requests["cpu"]) or float(
            limits.get("memoryInGB", requests["memoryInGB"])
        ) < float(requests["memoryInGB"]):
            return f"The limits of container '{container.get('name')}' are below its requests."
    return None


def _dns_label(name: str, body: dict[str, Any]) -> str | None:
    label = (body.get("properties", {}).get("ipAddress") or {}).get("dnsNameLabel")
    if label is not None and not _DNS_LABEL.match(str(label)):
        return f"The DNS name label '{label}' is invalid."
    return None


def _variables(name: str, body: dict[str, Any]) -> str | None:
    for container in _containers(body):
        seen: set[str] = set()
        for variable in _props(container).get("environmentVariables") or []:
            var = str(variable.get("name", ""))
            if not _VARIABLE_NAME.match(var):
                return f"The environment variable name '{var}' is invalid."
            if var in seen:
                return (
                    f"The environment variable '{var}' is set twice in container '{container.get('name')}'."
                )
            seen.add(var)
            has_value, has_secure = "value" in variable, "secureValue" in variable
            if has_value == has_secure:
                return f"The environment variable '{var}' needs exactly one of value and secureValue."
            text = str(variable.get("value", variable.get("secureValue")))
            if "\x00" in text or len(f"{var}={text}".encode()) > MAX_VARIABLE_BYTES:
                return f"The value of environment variable '{var}' cannot be set in a process environment."
    return None


def _volumes(name: str, body: dict[str, Any]) -> str | None:
    volumes = body.get("properties", {}).get("volumes") or []
    if len(volumes) > MAX_VOLUMES:
        return f"A container group has at most {MAX_VOLUMES} volumes; this one has {len(volumes)}."
    declared: set[str] = set()
    for volume in volumes:
        sources = [k for k in ("azureFile", "emptyDir", "secret", "gitRepo") if volume.get(k) is not None]
        if len(sources) != 1:
            return f"Volume '{volume.get('name')}' must have exactly one source."
        share = volume.get("azureFile")
        if share is not None and not (share.get("shareName") and share.get("storageAccountName")):
            return f"Volume '{volume.get('name')}' needs a share name and a storage account name."
        declared.add(str(volume.get("name")))
    for container in _containers(body):
        paths: set[str] = set()
        for mount in _props(container).get("volumeMounts") or []:
            if mount.get("name") not in declared:
                return f"Volume mount '{mount.get('name')}' names no volume of the group."
            if mount.get("mountPath") in paths:
                return f"Container '{container.get('name')}' mounts two volumes at {mount.get('mountPath')}."
            paths.add(str(mount.get("mountPath")))
    return None


ARM_RULES: tuple[Rule, ...] = (
    Rule(
        "container group name",
        NAME_RULES + "#microsoftcontainerinstance",
        400,
        "InvalidResourceName",
        _group_name,
    ),
    Rule(
        "container names",
        NAME_RULES + "#microsoftcontainerinstance",
        400,
        "InvalidContainerName",
        _container_names,
    ),
    Rule("containers per group", ACI_LIMITS, 400, "InvalidRequestContent", _container_count),
    Rule("ports per IP", ACI_LIMITS, 400, "InvalidRequestContent", _ports_per_ip),
    Rule(
        "IP ports exposed by a container",
        ACI_GROUPS + "#networking",
        400,
        "InvalidRequestContent",
        _ip_ports_exposed,
    ),
    Rule("Linux group maximum CPU and memory", ACI_LIMITS, 400, "InvalidRequestContent", _group_maximum),
    Rule(
        "group minimum 1 CPU and 1 GB",
        ACI_GROUPS + "#minimum-and-maximum-allocation",
        400,
        "InvalidRequestContent",
        _group_minimum,
    ),
    Rule(
        "container requests and limits",
        ACI_GROUPS + "#resource-usage-by-instances; " + AZ_CONTAINER,
        400,
        "InvalidRequestContent",
        _container_resources,
    ),
    Rule(
        "DNS name label",
        ACI_REST + " (ipAddress.dnsNameLabel, an RFC 1035 label)",
        400,
        "InvalidDnsNameLabel",
        _dns_label,
    ),
    Rule(
        "environment variables",
        ACI_REST + " (EnvironmentVariable); " + EXECVE,
        400,
        "InvalidRequestContent",
        _variables,
    ),
    Rule("volumes", ACI_LIMITS + "; " + ACI_REST + " (Volume)", 400, "InvalidRequestContent", _volumes),
)


def arm_violation(name: str, body: dict[str, Any]) -> tuple[Rule, str] | None:
    for rule in ARM_RULES:
        message = rule.check(name, body)
        if message is not None:
            return rule, message
    return None


# --- Azure Files ----------------------------------------------------------------------------------


def _share_name(share: str, quota: int | None = None) -> str | None:
    if not _SHARE_NAME.match(share):
        return f"The share name '{share}' is invalid: 3-63 lowercase letters, numbers and single hyphens."
    return None


def _share_quota(share: str, quota: int | None = None) -> str | None:
    if quota is not None and not SHARE_MIN_GIB <= quota <= SHARE_MAX_GIB:
        return f"The share quota {quota} GiB is outside {SHARE_MIN_GIB}-{SHARE_MAX_GIB}."
    return None


SHARE_NAME_RULE = Rule(
    "share name", SHARE_NAMES, 400, "InvalidResourceName", _share_name, code_documented=True
)
SHARE_QUOTA_RULE = Rule(
    "share quota", FILES_SCALE, 400, "InvalidHeaderValue", _share_quota, code_documented=True
)
SNAPSHOT_RULE = Rule(
    "snapshots per share",
    FILES_SCALE,
    409,
    "ShareSnapshotCountExceeded",
    lambda count: None if count < MAX_SHARE_SNAPSHOTS else f"The share already has {count} snapshots.",
    code_documented=True,
)
FILES_RULES: tuple[Rule, ...] = (SHARE_NAME_RULE, SHARE_QUOTA_RULE, SNAPSHOT_RULE)
