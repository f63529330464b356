"""The template catalog's rules (shared/domain/catalog.py) on the real file and on broken ones: a
bad entry is refused with a message naming it, so the app does not start with it."""

from __future__ import annotations

import pytest

from shared import templates
from shared.domain.catalog import parse_catalog
from shared.errors import ValidationFailed

ENTRY = """
[[template]]
name = "{name}"
display_name = "Elixir"
description = "Elixir and Phoenix."
image = "dev8-{name}"
default_size = "{size}"
ports = {ports}
extensions = {extensions}
environment_variables = {variables}
aliases = {aliases}
"""


def entry(name: str = "elixir", **fields: str) -> str:
    values = {"size": "small", "ports": "[4000]", "extensions": '["jakebecker.elixir-ls"]'}
    values |= {"variables": '{ MIX_ENV = "dev" }', "aliases": '["phoenix"]'}
    return ENTRY.format(name=name, **(values | fields))


def test_the_shipped_catalog_is_valid_and_finds_by_name_or_alias() -> None:
    catalog = parse_catalog(templates.CATALOG_FILE.read_text())
    assert catalog == templates.catalog()
    assert catalog.find(" NodeJS ") is catalog["node"]
    assert catalog.find("fullstack-react") is catalog["fullstack"]  # the real frontend's name
    for unknown in ("dotnet", "php", "docker", ""):
        assert catalog.find(unknown) is None
    with pytest.raises(ValidationFailed) as refused:
        catalog.choose("dotnet")
    assert refused.value.details == [{"field": "template", "message": f"one of {sorted(catalog.names)}"}]


def test_an_entry_is_all_data() -> None:
    (elixir,) = parse_catalog(entry()).templates
    assert (elixir.name, elixir.image, elixir.size.cpu_cores, elixir.ports) == (
        "elixir",
        "dev8-elixir",
        1,
        (4000,),
    )
    assert elixir.environment_variables == {"MIX_ENV": "dev"} and elixir.aliases == ("phoenix",)
    assert (elixir.category, elixir.popular, elixir.icon, elixir.tags) == ("language", False, None, ())


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[[template]]\nname = ", "not valid TOML"),
        ("", "templates"),  # no template at all
        (entry(size="huge"), "default_size"),
        (entry(ports="[8080]"), "ports"),  # the IDE's
        (entry(ports="[80]"), "ports"),
        (entry(ports="[4000, 4000]"), "ports"),
        (entry(extensions='["not an id"]'), "extensions"),
        (entry(variables='{ PATH = "/x" }'), "environment_variables"),  # the platform's own
        (entry(variables='{ DEV8_X = "1" }'), "environment_variables"),
        (entry(aliases='["Phoenix!"]'), "aliases"),
        (entry(name="Elixir"), "name"),
        (entry() + entry(), "names two templates"),
        (entry() + entry(name="other", aliases='["elixir"]'), "names two templates"),
        (entry().replace('display_name = "Elixir"', 'display_name = "Elixir"\nflavour = "x"'), "flavour"),
    ],
)
def test_a_broken_entry_is_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="template catalog") as refused:
        parse_catalog(text)
    assert named in str(refused.value)
