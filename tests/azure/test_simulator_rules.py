"""The simulators refuse what Azure refuses (one test per rule of tests/azure/azure_rules.py, through
the real SDK clients so the error reaches code the way Azure's would), and the adapters never send
what would be refused: every template at every size the `aci` backend offers is accepted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from shared.adapters.azure_common import client_options, translate
from shared.adapters.compute.aci import AciCompute
from shared.adapters.compute.aci_group import build_group
from shared.adapters.workspaces.azurefiles import AzureFilesWorkspaces
from shared.domain.placement import offered_sizes
from shared.domain.resources import compute_name, image_reference, workspace_name
from shared.errors import PermanentBackendError
from shared.templates import catalog
from shared.wiring import aci_placement
from tests.azure import azure_rules
from tests.azure.conftest import (
    REGISTRY,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    FakeCredential,
    group_settings,
    make_spec,
)
from tests.azure.sim_arm import STORAGE_KEY, ArmSimulator
from tests.azure.sim_files import FilesSimulator

Body = dict[str, Any]


def valid_body() -> Body:
    body, _ = build_group(make_spec(), group_settings(), STORAGE_KEY, lambda plain: "$argon2id$hash")
    return dict(body.serialize())


def workspace(body: Body) -> Body:
    return dict(body["properties"]["containers"][0]["properties"])


def add_ports(body: Body, count: int) -> None:
    ports = [{"port": 3000 + i, "protocol": "TCP"} for i in range(count)]
    body["properties"]["ipAddress"]["ports"] += ports
    body["properties"]["containers"][0]["properties"]["ports"] += ports


def set_requests(cpu: float, memory: float) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        for container, share in zip(body["properties"]["containers"], (cpu - 0.1, 0.1), strict=True):
            resources = container["properties"]["resources"]
            resources["requests"] = {"cpu": round(share, 1), "memoryInGB": round(memory / 2, 1)}
            resources.pop("limits", None)

    return change


def add_containers(count: int) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        template = body["properties"]["containers"][1]
        for index in range(count):
            extra = copy.deepcopy(template)
            extra["name"] = f"extra-{index}"
            extra["properties"]["resources"]["requests"] = {"cpu": 0.1, "memoryInGB": 0.1}
            extra["properties"]["ports"] = []
            body["properties"]["containers"].append(extra)

    return change


def add_volumes(count: int) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["properties"]["volumes"] += [{"name": f"v{i}", "emptyDir": {}} for i in range(count)]

    return change


def variable(name: str, **value: str) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        body["properties"]["containers"][0]["properties"]["environmentVariables"].append(
            {"name": name, **value}
        )

    return change


def put(arm: ArmSimulator, name: str, body: Body) -> None:
    client = ContainerInstanceManagementClient(FakeCredential(), SUBSCRIPTION, **client_options(arm))
    client.container_groups.begin_create_or_update(
        RESOURCE_GROUP, name, m.ContainerGroup.deserialize(body), polling=False
    ).result()


# (rule name, group name, change to a valid body): each breaks exactly one documented limit.
VIOLATIONS: list[tuple[str, str, Callable[[Body], None]]] = [
    ("container group name", "Dev8_Bad", lambda body: None),
    ("container group name", "dev8--double", lambda body: None),
    ("container group name", "x" * 64, lambda body: None),
    ("container names", "dev8-ok", lambda b: b["properties"]["containers"][0].update(name="Workspace")),
    ("containers per group", "dev8-ok", add_containers(azure_rules.MAX_CONTAINERS - 1)),
    ("ports per IP", "dev8-ok", lambda body: add_ports(body, azure_rules.MAX_PORTS_PER_IP - 2)),
    (
        "IP ports exposed by a container",
        "dev8-ok",
        lambda b: b["properties"]["ipAddress"]["ports"].append({"port": 3000, "protocol": "TCP"}),
    ),
    ("Linux group maximum CPU and memory", "dev8-ok", set_requests(8, 16)),
    ("Linux group maximum CPU and memory", "dev8-ok", set_requests(4, 32)),
    ("group minimum 1 CPU and 1 GB", "dev8-ok", set_requests(0.5, 2)),
    ("group minimum 1 CPU and 1 GB", "dev8-ok", set_requests(2, 0.6)),
    (
        "container requests and limits",
        "dev8-ok",
        lambda b: b["properties"]["containers"][0]["properties"]["resources"]["limits"].update(cpu=1.95),
    ),
    (
        "container requests and limits",
        "dev8-ok",
        lambda b: b["properties"]["containers"][0]["properties"]["resources"]["limits"].update(cpu=3.0),
    ),
    (
        "DNS name label",
        "dev8-ok",
        lambda b: b["properties"]["ipAddress"].update(dnsNameLabel="1-starts-with-digit"),
    ),
    ("environment variables", "dev8-ok", variable("NOT-A-NAME", value="x")),
    ("environment variables", "dev8-ok", variable("NODE_ENV", value="twice")),
    ("environment variables", "dev8-ok", variable("HUGE", secureValue="x" * azure_rules.MAX_VARIABLE_BYTES)),
    ("volumes", "dev8-ok", add_volumes(azure_rules.MAX_VOLUMES)),
    (
        "volumes",
        "dev8-ok",
        lambda b: b["properties"]["containers"][0]["properties"]["volumeMounts"].append(
            {"name": "nowhere", "mountPath": "/data"}
        ),
    ),
]


def test_every_arm_rule_is_exercised() -> None:
    assert {name for name, _, _ in VIOLATIONS} == {rule.name for rule in azure_rules.ARM_RULES}


@pytest.mark.parametrize(
    ("rule", "name", "change"), VIOLATIONS, ids=[f"{v[0]}-{i}" for i, v in enumerate(VIOLATIONS)]
)
def test_arm_refuses_a_group_that_breaks_a_limit(
    rule: str, name: str, change: Callable[[Body], None]
) -> None:
    arm = ArmSimulator(SUBSCRIPTION, RESOURCE_GROUP)
    body = valid_body()
    change(body)
    with pytest.raises(HttpResponseError) as raised:
        put(arm, name, body)
    expected = next(r for r in azure_rules.ARM_RULES if r.name == rule)
    assert raised.value.status_code == expected.status == 400
    assert raised.value.error is not None and raised.value.error.code == expected.code
    assert raised.value.error.message  # ARM's {"error": {"code", "message"}}
    assert arm.refused == [(rule, name)] and arm.groups == {}
    # The adapter turns it into a permanent failure: retrying the same body cannot help.
    assert isinstance(translate(raised.value, "creating"), PermanentBackendError)


def test_the_unchanged_body_is_accepted() -> None:
    arm = ArmSimulator(SUBSCRIPTION, RESOURCE_GROUP)
    put(arm, "dev8-ok", valid_body())
    assert arm.refused == [] and list(arm.groups) == ["dev8-ok"]


@pytest.mark.parametrize("template", sorted(catalog().names))
@pytest.mark.parametrize("size", [size.name for size in offered_sizes(aci_placement())])
def test_the_aci_adapter_sends_only_what_azure_accepts(
    template: str, size: str, aci: AciCompute, arm: ArmSimulator
) -> None:
    offered = {s.name: s for s in offered_sizes(aci_placement())}[size]
    spec = make_spec(
        image=image_reference(REGISTRY, catalog()[template].image, "v42"),
        cpu_cores=offered.cpu_cores,
        memory_gb=offered.memory_gb,
        ports=(*catalog()[template].ports, 9000, 9001, 9002),  # the template's and a user's own
    )
    aci.create(spec)
    assert arm.refused == []
    (sent,) = arm.put_bodies()
    assert len(sent["properties"]["ipAddress"]["ports"]) <= azure_rules.MAX_PORTS_PER_IP


def test_names_made_from_any_environment_id_are_valid() -> None:
    for environment_id in ("env-0000000000000000", "env-ffffffffffffffff", "env-0a1b2c3d4e5f6071"):
        assert azure_rules._group_name(compute_name(environment_id), {}) is None
        assert azure_rules._share_name(workspace_name(environment_id)) is None


@pytest.mark.parametrize(
    ("share", "quota", "rule"),
    [
        ("ws", 10, "share name"),
        ("WS-upper", 10, "share name"),
        ("ws--double", 10, "share name"),
        ("-ws", 10, "share name"),
        ("w" * 64, 10, "share name"),
        ("ws-ok", 0, "share quota"),
        ("ws-ok", azure_rules.SHARE_MAX_GIB + 1, "share quota"),
    ],
)
def test_files_refuses_bad_share_names_and_quotas(
    share: str, quota: int, rule: str, workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    with pytest.raises(PermanentBackendError):
        workspaces.ensure(share, quota)
    assert files.refused == [(rule, share)] and files.shares == {}


def test_files_refuses_the_201st_snapshot(workspaces: AzureFilesWorkspaces, files: FilesSimulator) -> None:
    workspaces.ensure("ws-ok", 10)
    for _ in range(azure_rules.MAX_SHARE_SNAPSHOTS):
        workspaces.snapshot("ws-ok")
    with pytest.raises(PermanentBackendError, match="ShareSnapshotCountExceeded"):
        workspaces.snapshot("ws-ok")
    assert files.refused == [("snapshots per share", "ws-ok")]
    assert len(files.shares["ws-ok"].snapshots) == azure_rules.MAX_SHARE_SNAPSHOTS


def test_files_refuses_a_request_signed_with_another_key(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator, arm: ArmSimulator
) -> None:
    workspaces.ensure("ws-ok", 10)
    files.rotate_key("bmV3LWtleS1ub2JvZHktbGlzdGVkLXlldA==")  # the account's key changed; ARM's not yet
    with pytest.raises(Exception, match="key changed"):
        workspaces.exists("ws-ok")
    assert files.requests[-1].status == 403
