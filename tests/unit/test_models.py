"""Request validation: bounds, names, ports, URLs, and refusing what a caller may not set."""

import pytest
from pydantic import ValidationError

from shared.domain.catalog import SIZES
from shared.domain.requests import CreateEnvironmentRequest, UpdateEnvironmentRequest
from shared.templates import catalog


def create(**fields):
    return CreateEnvironmentRequest.model_validate({"name": "dev", "template": "node", **fields})


def test_minimal_request():
    request = create()
    assert request.environment_variables == {} and request.secrets == {} and request.ports is None


@pytest.mark.parametrize("unknown", ["user_id", "status", "owner", "password"])
def test_unknown_fields_are_refused(unknown):
    with pytest.raises(ValidationError, match="Extra inputs"):
        create(**{unknown: "x"})


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "x" * 51},
        {"name": "bad\nname"},
        {"idle_timeout_minutes": 4},
        {"idle_timeout_minutes": 241},
        {"ports": [80]},
        {"ports": [8080]},
        {"ports": [2222]},
        {"ports": [3000, 3000]},
        {"ports": list(range(3000, 3011))},
        {"repository_url": "http://example.com/repo.git"},
        {"repository_url": "git@example.com:me/repo.git"},
        {"repository_url": "https://user:token@example.com/repo.git"},
        {"repository_url": "https://example.com/repo.git --upload-pack=touch /tmp/x"},
        {"repository_url": "https://example.com/repo.git\n--upload-pack=x"},  # urlsplit drops the \n
        {"repository_url": "https://example.com/re\tpo.git"},
        {"dotfiles_url": "https://example.com/dots\u2028.git"},
        {"environment_variables": {"1BAD": "x"}},
        {"environment_variables": {"DEV8_ANYTHING": "x"}},
        {"environment_variables": {"PATH": "/tmp"}},
        {"environment_variables": {"A": "x" * 4097}},
        {"environment_variables": {f"V{i}": "x" for i in range(51)}},
        {"secrets": {"PASSWORD": "x"}},
        {"secrets": {"GITHUB_TOKEN": "t"}, "environment_variables": {"GITHUB_TOKEN": "t"}},
        {"template": "node", "base_image": "python"},
        {"cpu_cores": 0},
    ],
)
def test_invalid_requests(fields):
    with pytest.raises(ValidationError):
        create(**fields)


def test_secrets_are_not_in_the_repr():
    request = create(secrets={"GITHUB_TOKEN": "ghp_hidden"})
    assert "ghp_hidden" not in repr(request)


def test_update_needs_a_change():
    with pytest.raises(ValidationError, match="at least one"):
        UpdateEnvironmentRequest.model_validate({})
    with pytest.raises(ValidationError):
        UpdateEnvironmentRequest.model_validate({"status": "RUNNING"})
    assert UpdateEnvironmentRequest.model_validate({"idle_timeout_minutes": 60}).name is None
    assert (
        UpdateEnvironmentRequest.model_validate({"name": None, "keep": True}).name is None
    )  # null: unchanged
    with pytest.raises(ValidationError) as refused:
        UpdateEnvironmentRequest.model_validate({"name": "tab\there"})
    assert refused.value.errors()[0]["loc"] == ("name",)


def test_catalog():
    templates = catalog()
    assert templates.names[:4] == ["node", "python", "go", "fullstack"]
    assert templates.find("nodejs") is templates["node"]
    assert templates.find("GoLang") is templates["go"]
    assert templates.find("ruby") is None
    assert {name: (s.cpu_cores, s.memory_gb, s.storage_gb) for name, s in SIZES.items()} == {
        "small": (1, 2, 20),
        "medium": (2, 4, 50),
        "large": (4, 8, 100),
        "xlarge": (8, 16, 200),
    }
    costs = [s.estimated_cost_per_hour for s in SIZES.values()]
    assert costs == sorted(costs) and costs[0] > 0
    for template in templates.templates:
        assert template.default_size in SIZES
        assert 8080 not in template.ports and 2222 not in template.ports


def test_retired_view_shows_when_the_restore_window_closes():
    from datetime import UTC, datetime

    from api.views import retired_view
    from shared.domain.environment import CloudProvider, Environment, Status

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    env = Environment(
        id="env-0123456789abcdef", owner="o", name="n", status=Status.DELETED, template="go", size="small",
        cpu_cores=1, memory_gb=2, storage_gb=20, cloud_provider=CloudProvider.LOCAL, cloud_region="r",
        idle_timeout_minutes=30, last_accessed_at=at, created_at=at, updated_at=at,
        snapshot="s1", restorable_until=at, sealed_secrets="v1.secret",
    )  # fmt: skip
    view = retired_view(env)
    assert view["retired_at"] == view["restorable_until"] == "2026-01-02T03:04:05Z"
    assert "sealed_secrets" not in view and "snapshot" not in view and "owner" not in view
