"""What a user asks to create or change: validated request bodies (pydantic), before the service
decides anything. Limits here keep one record inside a table row and a container group."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.config import JsonDict

from shared.domain.catalog import SIZES, check_user_ports
from shared.domain.samples import Sample
from shared.domain.variables import VARIABLE_NAME, check_variable_name

MAX_VARIABLES = 50
MAX_VARIABLE_VALUE = 4096
MAX_VARIABLES_TOTAL = 32 * 1024
MAX_SECRETS = 20
MAX_SECRET_VALUE = 16 * 1024
MAX_USER_PORTS = 10


class _Strict(BaseModel):
    # strict: JSON's types as they are ("2" is no number, true no integer, 1 no boolean).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


# What no process environment can hold: NUL ends a C string (execve takes NUL-terminated
# strings), and a lone UTF-16 surrogate (JSON's "\ud800") has no UTF-8 encoding at all.
_UNHOLDABLE = re.compile("[\x00\ud800-\udfff]")


def _check_variable_value(name: str, text: str, kind: str) -> None:
    if _UNHOLDABLE.search(text):
        raise ValueError(
            f"{kind} {name!r} holds a character no process environment can hold (NUL or a lone surrogate)"
        )


def _printable(value: str | None) -> str | None:
    """A name shows on one line wherever it is shown: no control or format characters."""
    if value is not None and not value.isprintable():
        raise ValueError("name must be printable text")
    return value


# What the OpenAPI document says of a field beyond its type (the validators below enforce it),
# so generated clients and schemathesis make requests the API takes. The template names are the
# deployed catalog's: api/openapi.py adds them.
_VARIABLES: JsonDict = {
    "propertyNames": {"pattern": VARIABLE_NAME.pattern},
    "maxProperties": MAX_VARIABLES,
    "additionalProperties": {"type": "string", "maxLength": MAX_VARIABLE_VALUE},
}
_SECRETS: JsonDict = {
    "propertyNames": {"pattern": VARIABLE_NAME.pattern},
    "maxProperties": MAX_SECRETS,
    "additionalProperties": {"type": "string", "maxLength": MAX_SECRET_VALUE},
    "writeOnly": True,
}
_SIZE_NAMES: JsonDict = {"enum": [*SIZES, None]}
# The smallest resources any size resolves to (placement.resolve_size); the largest are settings.
_AT_LEAST_HALF_A_CORE: JsonDict = {"minimum": 0.5}
_AT_LEAST_ONE: JsonDict = {"minimum": 1}
# No spaces or control characters: git would refuse them at clone time, long after the 201
# (and Python's urlsplit drops tabs and newlines before parsing, so its verdict alone would pass them).
_HTTPS: JsonDict = {"format": "uri", "pattern": r"^https://[^\s\x00-\x1f\x7f]+$"}
_PRINTABLE: JsonDict = {"pattern": r"^[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$", "description": "Printable text."}
_PORTS: JsonDict = {
    "maxItems": MAX_USER_PORTS,
    "uniqueItems": True,
    "items": {"minimum": 1024, "maximum": 65535},
}


class CreateEnvironmentRequest(_Strict):
    """A new environment. `template` (or its older name `base_image`) is required; `size` picks a
    preset, or give `cpu_cores`/`memory_gb`/`storage_gb`."""

    # The document says what the validators require: a template by one of its two names.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["template"], "properties": {"template": {"type": "string"}}},
                {"required": ["base_image"], "properties": {"base_image": {"type": "string"}}},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=50, examples=["my-app"], json_schema_extra=_PRINTABLE)
    template: str | None = Field(default=None, max_length=40)
    base_image: str | None = Field(default=None, max_length=40)
    size: str | None = Field(default=None, max_length=20, json_schema_extra=_SIZE_NAMES)
    cpu_cores: float | None = Field(default=None, gt=0, json_schema_extra=_AT_LEAST_HALF_A_CORE)
    memory_gb: float | None = Field(default=None, gt=0, json_schema_extra=_AT_LEAST_ONE)
    storage_gb: int | None = Field(default=None, gt=0, json_schema_extra=_AT_LEAST_ONE)
    environment_variables: dict[str, str] = Field(default_factory=dict, json_schema_extra=_VARIABLES)
    secrets: dict[str, str] = Field(default_factory=dict, repr=False, json_schema_extra=_SECRETS)
    ports: list[int] | None = Field(default=None, json_schema_extra=_PORTS)
    idle_timeout_minutes: int | None = Field(default=None, ge=5, le=240)
    repository_url: str | None = Field(default=None, max_length=2048, json_schema_extra=_HTTPS)
    dotfiles_url: str | None = Field(default=None, max_length=2048, json_schema_extra=_HTTPS)

    _printable_name = field_validator("name")(_printable)

    @field_validator("environment_variables")
    @classmethod
    def _valid_variables(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_VARIABLES:
            raise ValueError(f"at most {MAX_VARIABLES} environment variables")
        total = 0
        for name, text in value.items():
            check_variable_name(name, "environment variable")
            if len(text) > MAX_VARIABLE_VALUE:
                raise ValueError(f"environment variable {name!r} is longer than {MAX_VARIABLE_VALUE}")
            _check_variable_value(name, text, "environment variable")
            total += len(name) + len(text)
        if total > MAX_VARIABLES_TOTAL:
            raise ValueError(f"environment variables exceed {MAX_VARIABLES_TOTAL} characters in all")
        return value

    @field_validator("secrets")
    @classmethod
    def _valid_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_SECRETS:
            raise ValueError(f"at most {MAX_SECRETS} secrets")
        for name, text in value.items():
            check_variable_name(name, "secret")
            if len(text) > MAX_SECRET_VALUE:
                raise ValueError(f"secret {name!r} is longer than {MAX_SECRET_VALUE}")
            _check_variable_value(name, text, "secret")
        return value

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(value) > MAX_USER_PORTS:
            raise ValueError(f"at most {MAX_USER_PORTS} ports")
        check_user_ports(value)
        return value

    @field_validator("repository_url", "dotfiles_url")
    @classmethod
    def _https_repository(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError(f"{info.field_name} must be a URL without spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"{info.field_name} must be an https URL")
        if parts.username or parts.password:
            raise ValueError(f"{info.field_name} must not carry credentials; pass a token in secrets")
        return value

    @model_validator(mode="after")
    def _template_aliases_agree(self) -> CreateEnvironmentRequest:
        if self.template and self.base_image and self.template.lower() != self.base_image.lower():
            raise ValueError("template and base_image differ; give one of them")
        overlap = set(self.secrets) & set(self.environment_variables)
        if overlap:
            raise ValueError(f"names given both as secret and environment variable: {sorted(overlap)}")
        return self


class UpdateEnvironmentRequest(_Strict):
    """What can change on an existing environment: at least one field. A new `size` (or
    `cpu_cores`/`memory_gb`/`storage_gb`, storage only growing) applies at the next start; on a
    RUNNING environment only with `restart: true`, which stops and starts it."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: str | None = Field(default=None, min_length=1, max_length=50, json_schema_extra=_PRINTABLE)
    idle_timeout_minutes: int | None = Field(default=None, ge=5, le=240)
    keep: bool | None = None
    size: str | None = Field(default=None, max_length=20, json_schema_extra=_SIZE_NAMES)
    cpu_cores: float | None = Field(default=None, gt=0, json_schema_extra=_AT_LEAST_HALF_A_CORE)
    memory_gb: float | None = Field(default=None, gt=0, json_schema_extra=_AT_LEAST_ONE)
    storage_gb: int | None = Field(default=None, gt=0, json_schema_extra=_AT_LEAST_ONE)
    restart: bool = False

    @property
    def resizes(self) -> bool:
        return any(v is not None for v in (self.size, self.cpu_cores, self.memory_gb, self.storage_gb))

    def settings(self) -> dict[str, object]:
        """The changes that are not a resize (name, idle timeout, keep)."""
        return self.model_dump(exclude_none=True, include={"name", "idle_timeout_minutes", "keep"})

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateEnvironmentRequest:
        if self.restart and not self.resizes:
            raise ValueError("restart goes with a resize (size, cpu_cores, memory_gb or storage_gb)")
        if not self.settings() and not self.resizes:
            fields = "name, idle_timeout_minutes, keep, size, cpu_cores, memory_gb, storage_gb"
            raise ValueError(f"give at least one of: {fields}")
        return self

    _printable_name = field_validator("name")(_printable)


class SetupFailure(_Strict):
    """A step of the workspace setup (docker/base/dev8-workspace-setup) that failed at this start."""

    step: Literal["repository", "dotfiles"]
    detail: str = Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")  # one printable line


class ActivityReport(_Strict):
    """What POST .../activity may carry (no body: `{}`). The environment's agent says whether
    anyone is at work (`active`; false only sends the sample) and adds a resource sample and
    what the workspace setup could not do."""

    active: bool = True
    sample: Sample | None = None
    setup: list[SetupFailure] = Field(default_factory=list, max_length=4)

    def setup_problem(self) -> str | None:
        """The failures as one status reason, or None when there are none."""
        if not self.setup:
            return None
        what = {"repository": "the repository was not cloned", "dotfiles": "the dotfiles were not installed"}
        return "workspace setup: " + "; ".join(f"{what[f.step]} ({f.detail})" for f in self.setup)
