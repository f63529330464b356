"""Every DEV8_* setting the app reads is set by the Bicep function app settings and by
local.settings.sample.json, and neither sets a DEV8_* name the app does not read.

The settings are read from the Settings class itself (shared/settings.py), so a setting someone adds
there fails this test until infra/ and the sample set it too. The only settings production leaves
out are listed in BICEP_LEAVES_OUT, each with its reason.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from tests.infra.tooling import ROOT, probe

MAIN = ROOT / "infra" / "main.bicep"
FUNCTION_APP = ROOT / "infra" / "modules" / "functionapp.bicep"
SAMPLE = ROOT / "local.settings.sample.json"

# Settings production deliberately does not set, and why. Keep this list short and explicit: a new
# setting is wired in infra/ unless it truly has no meaning in Azure.
BICEP_LEAVES_OUT = {
    "DEV8_TABLES_CONNECTION": "production reaches Table Storage with the managed identity "
    "(DEV8_TABLES_ENDPOINT); a connection string needs shared keys, which are off on that account",
    "DEV8_LOCAL_DATA_DIR": "used only by the local compute and workspace backends (one machine)",
    "DEV8_CODE_SERVER_BIN": "used only by the local compute backend, which runs code-server processes",
    "DEV8_SIMULATED_LATENCY_MS": "simulated compute backend only (tests, load tests, demos)",
    "DEV8_SIMULATED_ERROR_RATE": "simulated compute backend only",
    "DEV8_SIMULATED_LOST_RESPONSE_RATE": "simulated compute backend only",
    "DEV8_SIMULATED_BOOT_POLLS": "simulated compute backend only",
    "DEV8_SIMULATED_SEED": "simulated compute backend only",
}

# Values known only once Azure has deployed (resource endpoints, ids, Key Vault references once
# resolved), standing in for them when the Bicep values are checked against the Settings class.
RUNTIME_STAND_INS = {
    "DEV8_JWT_SECRET": "k" * 64,
    "DEV8_SECRETS_KEY": base64.b64encode(bytes(range(32))).decode(),
    "DEV8_TABLES_ENDPOINT": "https://stdataexample.table.core.windows.net/",
    "DEV8_AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "DEV8_AZURE_RESOURCE_GROUP": "rg-example-workspaces",
    "DEV8_WORKSPACE_STORAGE_ACCOUNT": "stwsexample",
    "DEV8_REGISTRY": "acrexample.azurecr.io",
    "DEV8_MANAGED_IDENTITY_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "DEV8_REGISTRY_IDENTITY_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
    "rg-example/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ws-pull-example",
    "DEV8_PUBLIC_BASE_URL": "https://func-dev8-example.azurewebsites.net",
    "DEV8_IMAGE_TAG": "3f2a9c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49",  # the commit deploy.yml passes
}


def app_settings() -> set[str]:
    prefix = Settings.model_config.get("env_prefix")
    assert prefix == "DEV8_"
    return {f"{prefix}{name.upper()}" for name in Settings.model_fields}


def dev8_keys(node: Any, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every DEV8_* key of every object literal inside a parsed Bicep value."""
    found = {} if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("DEV8_"):
                found[key] = value
            dev8_keys(value, found)
    elif isinstance(node, list):
        for item in node:
            dev8_keys(item, found)
    return found


@pytest.fixture(scope="module")
def templates() -> dict[Path, Any]:
    return probe("bicep", MAIN, FUNCTION_APP)


@pytest.fixture(scope="module")
def bicep_settings(templates: dict[Path, Any]) -> dict[str, Any]:
    """DEV8_* app settings of the Function App, name to the parsed Bicep value."""
    main, app = templates[MAIN], templates[FUNCTION_APP]
    # main.bicep builds them and hands them to the function app module...
    assert main["modules"]["api"]["config"]["params"]["dev8Settings"] == "dev8Settings"
    settings = dev8_keys(main["variables"]["jwtModeSettings"])
    settings |= dev8_keys(main["variables"]["dev8Settings"])
    # ...which merges them into the app's settings with the few only it knows.
    app_settings_resource = app["resources"]["appSettings"]["config"]
    assert app_settings_resource["name"] == "appsettings"
    merged = app_settings_resource["properties"]["function"]
    assert merged["type"] == "union"
    assert "dev8Settings" in merged["parameters"].values()
    settings |= dev8_keys(app_settings_resource["properties"])
    return settings


def test_every_setting_the_app_reads_is_set_by_the_bicep(bicep_settings: dict[str, Any]) -> None:
    missing = app_settings() - set(bicep_settings) - set(BICEP_LEAVES_OUT)
    assert not missing, (
        f"add to infra/main.bicep (dev8Settings) or justify in BICEP_LEAVES_OUT: {sorted(missing)}"
    )


def test_the_bicep_sets_no_unknown_setting(bicep_settings: dict[str, Any]) -> None:
    unknown = set(bicep_settings) - app_settings()
    assert not unknown, f"the app does not read: {sorted(unknown)}"


def test_left_out_settings_are_real_and_really_left_out(bicep_settings: dict[str, Any]) -> None:
    assert set(BICEP_LEAVES_OUT) <= app_settings(), set(BICEP_LEAVES_OUT) - app_settings()
    assert not set(BICEP_LEAVES_OUT) & set(bicep_settings)
    assert all(len(reason) > 20 for reason in BICEP_LEAVES_OUT.values())


def test_sample_lists_every_setting_and_nothing_unknown() -> None:
    values = json.loads(SAMPLE.read_text())["Values"]
    listed = {name for name in values if name.startswith("DEV8_")}
    assert app_settings() - listed == set(), f"missing from the sample: {sorted(app_settings() - listed)}"
    assert listed - app_settings() == set(), f"unknown in the sample: {sorted(listed - app_settings())}"


def test_production_uses_aci_azure_files_and_managed_identity(bicep_settings: dict[str, Any]) -> None:
    assert bicep_settings["DEV8_COMPUTE_BACKEND"] == "aci"
    assert bicep_settings["DEV8_WORKSPACE_BACKEND"] == "azurefiles"
    assert "DEV8_TABLES_CONNECTION" not in bicep_settings
    assert "tableEndpoint" in json.dumps(bicep_settings["DEV8_TABLES_ENDPOINT"])
    assert "apiClientId" in json.dumps(bicep_settings["DEV8_MANAGED_IDENTITY_CLIENT_ID"])


def test_secrets_come_from_key_vault_references(
    templates: dict[Path, Any], bicep_settings: dict[str, Any]
) -> None:
    assert "keyVault" in json.dumps(bicep_settings["DEV8_JWT_SECRET"])
    assert "jwtSecretReference" in json.dumps(bicep_settings["DEV8_JWT_SECRET"])
    assert "secretsKeyReference" in json.dumps(bicep_settings["DEV8_SECRETS_KEY"])
    vault = probe("bicep", ROOT / "infra" / "modules" / "keyvault.bicep")[
        ROOT / "infra" / "modules" / "keyvault.bicep"
    ]
    for output in ("jwtSecretReference", "secretsKeyReference"):
        assert vault["outputs"][output]["value"].startswith(
            "@Microsoft.KeyVault(VaultName=${vault.name};SecretName="
        )


def test_only_one_jwt_mode_is_ever_set(templates: dict[Path, Any]) -> None:
    # The app refuses DEV8_JWT_SECRET and DEV8_JWT_JWKS_URL together: the Bicep picks one of the two.
    choice = templates[MAIN]["variables"]["jwtModeSettings"]["value"]["operator"]
    assert choice["type"] == "conditional"
    assert set(choice["operands"]["true_value"]) == {"DEV8_JWT_SECRET"}
    assert set(choice["operands"]["false_value"]) == {"DEV8_JWT_JWKS_URL"}
    assert "DEV8_JWT_SECRET" not in dev8_keys(templates[MAIN]["variables"]["dev8Settings"])


def _resolve(value: Any, parameters: dict[str, Any]) -> str | None:
    """A setting's deploy-time value when the template alone decides it (literal or parameter default)."""
    if isinstance(value, str):
        if value in parameters:
            default = parameters[value].get("default")
            return None if default is None else str(default)
        return None if "${" in value else value
    if isinstance(value, dict) and value.get("function", {}).get("type") == "string":
        (inner,) = value["function"]["parameters"].values()
        return _resolve(inner, parameters)
    return None


def test_the_bicep_values_pass_the_apps_own_validation(
    templates: dict[Path, Any], bicep_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DEV8_"):
            monkeypatch.delenv(name)
    parameters = templates[MAIN]["parameters"]
    values: dict[str, str] = {}
    decided = 0
    for name, raw in bicep_settings.items():
        if name == "DEV8_JWT_JWKS_URL":
            continue  # the other branch of the JWT choice (covered above)
        resolved = _resolve(raw, parameters)
        if resolved is not None:
            decided += 1
        value = resolved if resolved is not None else RUNTIME_STAND_INS.get(name)
        if value is not None:
            values[name.removeprefix("DEV8_").lower()] = value
    assert decided >= 10, "expected most settings to be decided by the template itself"
    settings = Settings(**values)  # type: ignore[arg-type]
    assert settings.compute_backend == "aci"
    assert settings.workspace_backend == "azurefiles"
    assert settings.tables_endpoint and settings.workspace_storage_account and settings.azure_resource_group


def test_workspace_groups_pull_images_with_the_pull_identity(bicep_settings: dict[str, Any]) -> None:
    # Never the API identity: code inside a workspace can get tokens for the group's identity.
    wired = json.dumps(bicep_settings["DEV8_REGISTRY_IDENTITY_ID"])
    assert "pullIdentityId" in wired and "api" not in wired.lower()
