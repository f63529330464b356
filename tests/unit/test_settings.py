import base64

import pytest

from shared.settings import ComputeBackendName, SettingsError, load_settings

KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("DEV8_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DEV8_JWT_SECRET", "s" * 32)
    monkeypatch.setenv("DEV8_TABLES_CONNECTION", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DEV8_SECRETS_KEY", KEY)
    return monkeypatch


def test_defaults(env):
    settings = load_settings()
    assert settings.idle_timeout_minutes == 30
    assert settings.max_environments_per_user == 10
    assert settings.max_running_per_user == 3
    assert settings.retention_days == 30
    assert settings.compute_backend is ComputeBackendName.SIMULATED
    assert settings.secrets_key_bytes == b"k" * 32


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("DEV8_JWT_SECRET", "too-short", "DEV8_JWT_SECRET"),
        ("DEV8_SECRETS_KEY", "not base64!", "DEV8_SECRETS_KEY"),
        ("DEV8_SECRETS_KEY", base64.b64encode(b"short").decode(), "DEV8_SECRETS_KEY"),
        ("DEV8_MAX_RUNNING_PER_USER", "zero", "DEV8_MAX_RUNNING_PER_USER"),
        ("DEV8_IDLE_TIMEOUT_MINUTES", "1", "DEV8_IDLE_TIMEOUT_MINUTES"),
        ("DEV8_COMPUTE_BACKEND", "kubernetes", "DEV8_COMPUTE_BACKEND"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(env, name, value, named):
    env.setenv(name, value)
    with pytest.raises(SettingsError) as failure:
        load_settings()
    message = str(failure.value)
    assert named in message and "\n" not in message
    assert value not in message or name != "DEV8_JWT_SECRET"  # never echo a secret


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("DEV8_JWT_SECRET", "DEV8_JWT_SECRET or DEV8_JWT_JWKS_URL"),
        ("DEV8_TABLES_CONNECTION", "DEV8_TABLES_CONNECTION or DEV8_TABLES_ENDPOINT"),
        ("DEV8_SECRETS_KEY", "DEV8_SECRETS_KEY"),
    ],
)
def test_a_missing_setting_is_named(env, missing, named):
    env.delenv(missing)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_aci_needs_its_subscription(env):
    env.setenv("DEV8_COMPUTE_BACKEND", "aci")
    with pytest.raises(SettingsError, match="DEV8_AZURE_SUBSCRIPTION_ID"):
        load_settings()


def test_empty_values_count_as_unset(env):
    env.setenv("DEV8_SIMULATED_SEED", "")
    env.setenv("DEV8_JWT_JWKS_URL", "")
    assert load_settings().simulated_seed is None


def test_only_one_jwt_mode(env):
    env.setenv("DEV8_JWT_JWKS_URL", "https://login.example.com/keys")
    with pytest.raises(SettingsError, match="only one of DEV8_JWT_SECRET and DEV8_JWT_JWKS_URL"):
        load_settings()


def test_an_unresolved_key_vault_reference_is_refused(env):
    env.setenv("DEV8_JWT_SECRET", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/jwt/)")
    with pytest.raises(
        SettingsError, match="DEV8_JWT_SECRET is invalid: is an unresolved Key Vault reference"
    ):
        load_settings()


@pytest.mark.parametrize("tag", [None, "latest", "LATEST"])
def test_aci_refuses_a_moving_image_tag(env, tag):
    env.setenv("DEV8_COMPUTE_BACKEND", "aci")
    env.setenv("DEV8_AZURE_SUBSCRIPTION_ID", "sub")
    env.setenv("DEV8_AZURE_RESOURCE_GROUP", "rg")
    if tag is not None:
        env.setenv("DEV8_IMAGE_TAG", tag)
    with pytest.raises(SettingsError, match="DEV8_IMAGE_TAG must name the images' build"):
        load_settings()
    env.setenv("DEV8_IMAGE_TAG", "3f2a9c1d0e8b")
    assert load_settings().image_tag == "3f2a9c1d0e8b"
