"""The template catalog and size presets users choose from. The templates are data
(shared/templates.toml, read by shared/templates.py); here are their rules. Pure."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.domain.variables import check_variable_name
from shared.errors import ValidationFailed

# Reserved inside every workspace: the IDE and SSH.
IDE_PORT = 8080
SSH_PORT = 2222
RESERVED_PORTS = frozenset({IDE_PORT, SSH_PORT})

# Approximate ACI pay-as-you-go rates (USD) for estimating a running environment's hourly cost.
CPU_CORE_HOUR_USD = 0.0486
MEMORY_GB_HOUR_USD = 0.0054
STORAGE_GB_HOUR_USD = 0.06 / 730  # Azure Files transaction-optimized, per GB-month


@dataclass(frozen=True, slots=True)
class Size:
    name: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int

    @property
    def estimated_cost_per_hour(self) -> float:
        return estimate_cost_per_hour(self.cpu_cores, self.memory_gb, self.storage_gb)


def check_user_ports(ports: tuple[int, ...] | list[int]) -> None:
    """ValueError unless each is a dev-server port (unprivileged, not the IDE's or SSH's), once."""
    for port in ports:
        if not 1024 <= port <= 65535:
            raise ValueError(f"port {port} must be between 1024 and 65535")
        if port in RESERVED_PORTS:
            raise ValueError(f"port {port} is reserved for the IDE or SSH")
    if len(set(ports)) != len(ports):
        raise ValueError("ports must be unique")


def estimate_cost_per_hour(cpu_cores: float, memory_gb: float, storage_gb: int) -> float:
    cost = cpu_cores * CPU_CORE_HOUR_USD + memory_gb * MEMORY_GB_HOUR_USD + storage_gb * STORAGE_GB_HOUR_USD
    return round(cost, 4)


SIZES: dict[str, Size] = {
    size.name: size
    for size in (
        Size("small", 1, 2, 20),
        Size("medium", 2, 4, 50),
        Size("large", 4, 8, 100),
        Size("xlarge", 8, 16, 200),
    )
}
DEFAULT_SIZE = "medium"


class Template(BaseModel):
    """One entry of the catalog (the product documents' Template model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    display_name: str = Field(min_length=1, max_length=40)
    description: str = Field(min_length=1, max_length=300)
    image: str = Field(pattern=r"^dev8-[a-z0-9][a-z0-9-]*$")  # a repository in the registry
    default_size: str
    ports: tuple[int, ...] = ()
    extensions: tuple[str, ...] = ()
    environment_variables: dict[str, str] = Field(default_factory=dict)
    category: str = Field(default="language", pattern=r"^[a-z][a-z-]{0,30}$")
    tags: tuple[str, ...] = ()
    icon: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,40}$")
    popular: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> Size:
        return SIZES[self.default_size]

    @field_validator("default_size")
    @classmethod
    def _a_preset(cls, value: str) -> str:
        if value not in SIZES:
            raise ValueError(f"default_size must be one of {list(SIZES)}")
        return value

    @field_validator("ports")
    @classmethod
    def _user_ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        check_user_ports(value)
        return value

    @field_validator("extensions")
    @classmethod
    def _extension_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for extension in value:  # publisher.name, as the marketplace and Open VSX name them
            publisher, dot, name = extension.partition(".")
            if not (dot and publisher and name) or not extension.replace("-", "").replace(".", "").isalnum():
                raise ValueError(f"extension {extension!r} must be publisher.name")
        return value

    @field_validator("aliases", "tags")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for word in value:
            if not word or not word.replace("-", "").isalnum() or word != word.lower():
                raise ValueError(f"{word!r} must be lower-case letters, digits and dashes")
        return value

    @field_validator("environment_variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            check_variable_name(name, "environment variable")
        return value


class Catalog(BaseModel):
    """Every template, by name and alias (case-insensitive). Names and aliases are unique."""

    model_config = ConfigDict(frozen=True)

    templates: tuple[Template, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: set[str] = set()
        for template in self.templates:
            for key in (template.name, *template.aliases):
                if key.lower() in seen:
                    raise ValueError(f"{key!r} names two templates")
                seen.add(key.lower())
        return self

    @property
    def names(self) -> list[str]:
        return [template.name for template in self.templates]

    @property
    def aliases(self) -> list[str]:
        return [alias for template in self.templates for alias in template.aliases]

    def find(self, name: str) -> Template | None:
        key = name.strip().lower()
        return next((t for t in self.templates if key == t.name or key in t.aliases), None)

    def __getitem__(self, name: str) -> Template:
        found = self.find(name)
        if found is None:
            raise KeyError(name)
        return found

    def choose(self, name: str | None) -> Template:
        """The template a create request names (aliases allowed), or a 400 naming the choices."""
        choices = [{"field": "template", "message": f"one of {sorted(self.names)}"}]
        if not name:
            raise ValidationFailed("template is required", choices)
        template = self.find(name)
        if template is None:
            raise ValidationFailed(f"unknown template {name!r}", choices)
        return template


def parse_catalog(text: str) -> Catalog:
    """The catalog in TOML (`[[template]]` tables); ValueError naming what is wrong."""
    try:
        data = tomllib.loads(text)
        return Catalog.model_validate({"templates": data.get("template", [])})
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the template catalog is not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in exc.errors(include_url=False)
        )
        raise ValueError(f"the template catalog is invalid: {problems}") from None
