"""What each compute backend can run, and the preview URLs an environment offers for its ports."""

from __future__ import annotations

import pytest

from api.views import forwarded_ports
from shared.domain.environment import CloudProvider
from shared.domain.placement import (
    Placement,
    ResolvedSize,
    ResourceBounds,
    SizeRequest,
    offered_sizes,
    resolve_size,
)
from shared.errors import ValidationFailed
from shared.templates import catalog
from shared.wiring import aci_placement


def test_aci_offers_the_sizes_one_container_group_can_be() -> None:
    assert [size.name for size in offered_sizes(aci_placement())] == ["small", "medium", "large"]


def test_a_local_backend_offers_every_size() -> None:
    local = Placement(CloudProvider.LOCAL, "local-local")
    assert [size.name for size in offered_sizes(local)] == ["small", "medium", "large", "xlarge"]


def test_aci_bounds_and_granularity() -> None:
    aci = aci_placement()
    assert aci.runs(1, 1) and aci.runs(4, 16) and aci.runs(1.5, 2.7)
    assert [p["field"] for p in aci.problems(4.1, 16.5)] == ["cpu_cores", "memory_gb"]
    assert [p["field"] for p in aci.problems(0.9, 0.5)] == ["cpu_cores", "memory_gb"]
    assert aci.problems(1.25, 2) == [
        {"field": "cpu_cores", "message": "Azure Container Instances takes multiples of 0.1"}
    ]


def test_forwarded_ports_go_through_the_ides_proxy_on_its_origin() -> None:
    assert forwarded_ports("https://dev8-1a2b.abc.eastus.azurecontainer.io/", [3000, 5173]) == [
        {"port": 3000, "url": "https://dev8-1a2b.abc.eastus.azurecontainer.io/proxy/3000/"},
        {"port": 5173, "url": "https://dev8-1a2b.abc.eastus.azurecontainer.io/proxy/5173/"},
    ]
    local = "http://127.0.0.1:41234/?folder=/data/workspaces/ws-1a2b"
    assert forwarded_ports(local, [8000]) == [{"port": 8000, "url": "http://127.0.0.1:41234/proxy/8000/"}]


def test_no_preview_urls_while_the_ide_has_no_url() -> None:
    assert forwarded_ports(None, [3000]) == []


ACI = Placement(CloudProvider.AZURE, "eastus", 4.0, 16.0, 1.0, 1.0, 0.1, label="Azure Container Instances")
LOCAL = Placement(CloudProvider.LOCAL, "local-test")
BOUNDS = ResourceBounds(max_cpu_cores=8, max_memory_gb=16, max_storage_gb=200)


@pytest.mark.parametrize(
    ("wanted", "placement", "resolved"),
    [
        (SizeRequest(), LOCAL, ResolvedSize("medium", 2, 4, 50)),
        (SizeRequest("SMALL"), LOCAL, ResolvedSize("small", 1, 2, 20)),
        (SizeRequest("xlarge"), LOCAL, ResolvedSize("xlarge", 8, 16, 200)),
        (SizeRequest(cpu_cores=3), LOCAL, ResolvedSize("custom", 3, 8, 100)),  # the template's size under it
        (SizeRequest("small", storage_gb=30), LOCAL, ResolvedSize("custom", 1, 2, 30)),
        (SizeRequest("large"), ACI, ResolvedSize("large", 4, 8, 100)),
        (SizeRequest("xlarge", cpu_cores=4), ACI, ResolvedSize("custom", 4, 16, 200)),
    ],
)
def test_a_size_request_resolves_to_exact_resources(wanted, placement, resolved) -> None:
    assert resolve_size(wanted, catalog()["fullstack"], placement, BOUNDS) == resolved


@pytest.mark.parametrize(
    ("wanted", "placement", "message", "fields"),
    [
        (SizeRequest("huge"), LOCAL, "unknown size 'huge'", ["size"]),
        (SizeRequest("xlarge"), ACI, "size 'xlarge' is not offered on Azure Container Instances", ["size"]),
        (SizeRequest(cpu_cores=9), LOCAL, "requested resources are out of bounds", ["cpu_cores"]),
        (SizeRequest(storage_gb=500), LOCAL, "requested resources are out of bounds", ["storage_gb"]),
        (SizeRequest(cpu_cores=1.25), ACI, "this size cannot run on Azure Container", ["cpu_cores"]),
        (SizeRequest("small", memory_gb=0.5), LOCAL, "requested resources are out of bounds", ["memory_gb"]),
    ],
)
def test_a_size_that_cannot_be_had_is_refused_per_field(wanted, placement, message, fields) -> None:
    with pytest.raises(ValidationFailed) as refused:
        resolve_size(wanted, catalog()["node"], placement, BOUNDS)
    assert refused.value.message.startswith(message)
    assert [detail["field"] for detail in refused.value.details] == fields
