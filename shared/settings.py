"""Application settings, read once from DEV8_* environment variables (app settings in Azure).

A bad or missing setting stops start-up with one line that names it (`SettingsError`).
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from functools import lru_cache
from typing import Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(RuntimeError):
    """A setting is missing or invalid; the message is one line naming it."""


class ComputeBackendName(StrEnum):
    ACI = "aci"
    LOCAL = "local"
    SIMULATED = "simulated"


class WorkspaceBackendName(StrEnum):
    AZUREFILES = "azurefiles"
    LOCAL = "local"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEV8_", extra="ignore", frozen=True, env_ignore_empty=True)

    # Auth: HS256 with a shared secret, or RS256/ES256 keys from a JWKS endpoint.
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    # Table Storage: a connection string (Azurite locally) or an endpoint used with managed identity.
    tables_connection: SecretStr | None = None
    tables_endpoint: str | None = None
    table_prefix: str = Field(default="dev8", pattern=r"^[A-Za-z][A-Za-z0-9]{0,39}$")

    # Seals per-environment secrets (IDE password, user secrets) in table rows: 32 bytes, base64.
    secrets_key: SecretStr | None = None

    compute_backend: ComputeBackendName = ComputeBackendName.SIMULATED
    workspace_backend: WorkspaceBackendName = WorkspaceBackendName.LOCAL

    azure_subscription_id: str | None = None
    azure_resource_group: str | None = None
    azure_location: str = "eastus"
    workspace_storage_account: str | None = None
    registry: str = "dev8.azurecr.io"
    image_tag: str = "latest"
    managed_identity_client_id: str | None = None
    # Resource id of the user-assigned identity (AcrPull only) that workspace container groups pull
    # their images with; unset: images are pulled without credentials (a public registry).
    registry_identity_id: str | None = Field(
        default=None,
        pattern=r"(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/"
        r"Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$",
    )

    idle_timeout_minutes: int = Field(default=30, ge=5, le=240)
    max_environments_per_user: int = Field(default=10, ge=1, le=1000)
    max_running_per_user: int = Field(default=3, ge=1, le=100)
    retention_days: int = Field(default=30, ge=1, le=3650)
    restore_grace_days: int = Field(default=7, ge=1, le=365)
    max_session_hours: int = Field(default=12, ge=1, le=168)
    # USD a user may spend a month (unset: no budget); a token's dev8_monthly_budget claim wins.
    monthly_budget_per_user: float | None = Field(default=None, gt=0, le=1_000_000)
    orphan_grace_minutes: int = Field(default=30, ge=1, le=1440)
    # Workspace snapshots (docker/base/dev8-snapshot-agent): how often a running workspace is saved
    # when something changed, and which snapshots pruning keeps.
    snapshot_interval_seconds: int = Field(default=120, ge=30, le=3600)
    snapshot_keep_last: int = Field(default=10, ge=1, le=100)
    snapshot_keep_hourly: int = Field(default=24, ge=0, le=168)
    snapshot_keep_daily: int = Field(default=7, ge=0, le=366)
    # How long a stop waits for the workspace's final snapshot, and how often the idle sweep asks
    # a running workspace to prune its repository.
    snapshot_stop_wait_seconds: int = Field(default=120, ge=0, le=600)
    snapshot_prune_hours: int = Field(default=24, ge=1, le=720)
    # Rate limits per app instance: commands and reads per owner, failed authentications per
    # client address, each a budget per minute that may be spent in one burst.
    rate_commands_per_minute: int = Field(default=60, ge=1, le=100_000)
    rate_reads_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    rate_auth_failures_per_minute: int = Field(default=60, ge=1, le=100_000)
    # NCRONTAB schedules (seconds first) of the timer triggers.
    idle_sweep_schedule: str = "0 */5 * * * *"
    retention_schedule: str = "0 30 3 * * *"
    reconcile_schedule: str = "0 */10 * * * *"
    max_cpu_cores: float = Field(default=8, gt=0, le=64)
    max_memory_gb: float = Field(default=16, gt=0, le=256)
    max_storage_gb: int = Field(default=200, ge=1, le=4096)
    provision_timeout_seconds: int = Field(default=600, ge=10, le=3600)

    local_data_dir: str = ".dev8"
    code_server_bin: str | None = None
    public_base_url: str = "http://localhost:7071"

    # Simulated compute: per-operation latency and faults, deterministic when seeded.
    simulated_latency_ms: int = Field(default=0, ge=0, le=60_000)
    simulated_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    simulated_lost_response_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    simulated_boot_polls: int = Field(default=1, ge=0, le=100)
    simulated_seed: int | None = None

    @field_validator("monthly_budget_per_user", mode="before")
    @classmethod
    def _no_budget(cls, value: object) -> object:
        return None if value == "" else value  # an app setting left empty: no budget

    @field_validator("jwt_secret", "secrets_key", "tables_connection")
    @classmethod
    def _resolved(cls, value: SecretStr | None) -> SecretStr | None:
        # App Service passes an unresolvable Key Vault reference through as its literal text.
        if value is not None and value.get_secret_value().startswith("@Microsoft.KeyVault("):
            raise ValueError(
                "is an unresolved Key Vault reference (check the app's identity and vault access)"
            )
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value

    @field_validator("secrets_key")
    @classmethod
    def _key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                raw = base64.b64decode(value.get_secret_value(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be base64") from None
            if len(raw) != 32:
                raise ValueError("must decode to 32 bytes")
        return value

    @model_validator(mode="after")
    def _required_together(self) -> Self:
        if self.jwt_secret is None and not self.jwt_jwks_url:
            raise _missing("DEV8_JWT_SECRET or DEV8_JWT_JWKS_URL")
        if self.jwt_secret is not None and self.jwt_jwks_url:
            raise _MissingSetting("set only one of DEV8_JWT_SECRET and DEV8_JWT_JWKS_URL")
        if self.tables_connection is None and not self.tables_endpoint:
            raise _missing("DEV8_TABLES_CONNECTION or DEV8_TABLES_ENDPOINT")
        if self.secrets_key is None:
            raise _missing("DEV8_SECRETS_KEY")
        if self.compute_backend is ComputeBackendName.ACI and not (
            self.azure_subscription_id and self.azure_resource_group
        ):
            raise _missing("DEV8_AZURE_SUBSCRIPTION_ID and DEV8_AZURE_RESOURCE_GROUP (compute backend aci)")
        moving_tag = self.image_tag.strip().lower() in ("", "latest")
        if self.compute_backend is ComputeBackendName.ACI and moving_tag:
            # ACI pulls the image again on every start (container-instances-stop-start): a moving
            # tag would upgrade a user's tools silently. Pin the commit the images were built from.
            raise _MissingSetting(
                "DEV8_IMAGE_TAG must name the images' build (the commit), not latest, with the aci backend"
            )
        if self.workspace_backend is WorkspaceBackendName.AZUREFILES and not self.workspace_storage_account:
            raise _missing("DEV8_WORKSPACE_STORAGE_ACCOUNT (workspace backend azurefiles)")
        return self

    @property
    def secrets_key_bytes(self) -> bytes:
        assert self.secrets_key is not None  # guaranteed by validation
        return base64.b64decode(self.secrets_key.get_secret_value())


class _MissingSetting(ValueError):
    pass


def _missing(names: str) -> _MissingSetting:
    return _MissingSetting(f"{names} must be set")


def load_settings() -> Settings:
    """Read settings from the environment, turning any problem into one clear line."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        location = error.get("loc") or ()
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if location:
            name = "DEV8_" + str(location[0]).upper()
            raise SettingsError(f"setting {name} is invalid: {message}") from None
        raise SettingsError(f"settings are incomplete: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache with `get_settings.cache_clear()`)."""
    return load_settings()
