"""What each compute backend can run, and the preview URLs an environment offers for its ports."""

from __future__ import annotations

from api.views import forwarded_ports
from shared.domain.environment import CloudProvider
from shared.services.environments import Placement, offered_sizes
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
