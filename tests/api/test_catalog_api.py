"""A template added as data only (an entry in the catalog file, no code): the app offers it, its
document lists it, and a create by its name or alias makes an environment of its image with its
default variables under the user's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api import openapi
from shared import templates, wiring
from shared.domain.resources import compute_name
from tests.api.conftest import Api
from tests.api.test_environments_api import error_of

ELIXIR = """
[[template]]
name = "elixir"
display_name = "Elixir"
description = "Elixir and Phoenix."
image = "dev8-elixir"
default_size = "small"
ports = [4000]
extensions = ["jakebecker.elixir-ls"]
environment_variables = { MIX_ENV = "dev", ERL_AFLAGS = "-kernel shell_history enabled" }
category = "language"
tags = ["elixir", "web"]
icon = "elixir"
aliases = ["phoenix"]
"""


@pytest.fixture
def extra_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shipped catalog plus one entry, read the way the app reads it (before the app starts)."""
    catalog = tmp_path / "templates.toml"
    catalog.write_text(templates.CATALOG_FILE.read_text() + ELIXIR)
    monkeypatch.setattr(templates, "CATALOG_FILE", catalog)
    templates.catalog.cache_clear()
    openapi.cached.cache_clear()
    yield
    templates.catalog.cache_clear()
    openapi.cached.cache_clear()


def test_a_template_added_as_data_is_offered_and_made(extra_template: None, api: Api) -> None:
    offered = {t["name"]: t for t in api.call("GET", "/templates").json()["templates"]}
    assert offered["elixir"]["ports"] == [4000] and offered["elixir"]["aliases"] == ["phoenix"]
    assert offered["elixir"]["default_cpu_cores"] == 1 and offered["elixir"]["icon"] == "elixir"
    document = api.call("GET", "/openapi.json", None).json()
    names = document["components"]["schemas"]["CreateEnvironmentRequest"]["properties"]["template"]["enum"]
    assert "elixir" in names and "phoenix" in names

    body = {"name": "web", "template": "phoenix", "environment_variables": {"MIX_ENV": "test"}}
    made = api.call("POST", "/environments", json=body)
    assert made.status_code == 201, made.text
    env = made.json()["environment"]
    assert (env["template"], env["size"], env["ports"]) == ("elixir", "medium", [4000])  # medium unless asked
    assert env["environment_variables"] == {"MIX_ENV": "test", "ERL_AFLAGS": "-kernel shell_history enabled"}
    api.settled(env["id"])
    spec = wiring.compute().spec_of(compute_name(env["id"]))
    assert spec.image.endswith("/dev8-elixir:" + spec.image.rsplit(":", 1)[1]) or spec.image.startswith(
        "dev8-elixir"
    )

    refused = error_of(
        api.call("POST", "/environments", json={"name": "x", "template": "dotnet"}), 400, "VALIDATION_ERROR"
    )
    assert "elixir" in refused["details"][0]["message"]  # the choices, as deployed
