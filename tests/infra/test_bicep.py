"""infra/: every .bicep file parses (two independent grammars), modules are wired consistently, the
security-relevant choices hold (identity-only storage, narrow roles, Flex Consumption), checkov's
Bicep scan has no failed check and every skip is justified, and azd's files agree with the template.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devhost.host.server import BODY_LIMIT as LOCAL_HOST_BODY_LIMIT
from tests.infra.tooling import ROOT, checkov, probe

INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Built-in role definition ids (Azure RBAC documentation), by role name.
ROLE_IDS = {
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Azure Container Instances Contributor Role": "5d977122-f97e-4b4d-a52f-6b43003ddb4d",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Managed Identity Operator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Storage Account Key Operator Service Role": "81a9662b-bebf-436f-a333-f67b29880f12",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
}
# Broad roles the backend must never hold.
FORBIDDEN_ROLE_IDS = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def parsed() -> dict[Path, Any]:
    return probe("bicep", *BICEP_FILES)


def accessor(value: Any) -> str:
    """`a.b.c` for pycep's nested property_accessor form; a plain string stays as it is."""
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"
    return value if isinstance(value, str) else json.dumps(value)


def module_path(source: Path, module: dict[str, Any]) -> Path:
    return (source.parent / module["detail"]["path"]).resolve()


def test_there_is_a_main_template_and_modules() -> None:
    assert MAIN in BICEP_FILES
    assert len(BICEP_FILES) >= 5, BICEP_FILES


def test_every_bicep_file_parses_with_pycep(parsed: dict[Path, Any]) -> None:
    errors = {str(p.relative_to(ROOT)): r["error"] for p, r in parsed.items() if "error" in r}
    assert not errors, errors


def test_every_bicep_file_parses_with_tree_sitter_bicep() -> None:
    problems = {str(p.relative_to(ROOT)): r for p, r in probe("treesitter", *BICEP_FILES).items() if r}
    assert not problems, problems


def test_the_parsers_reject_broken_bicep(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bicep"
    broken.write_text("param name string =\nresource x 'A/b@2020-01-01' = {\n  name: name\n")
    assert "error" in probe("bicep", broken)[broken]
    assert probe("treesitter", broken)[broken]


def test_modules_exist_and_get_exactly_their_parameters(parsed: dict[Path, Any]) -> None:
    problems = []
    for source, template in parsed.items():
        for symbol, module in template.get("modules", {}).items():
            target = module_path(source, module)
            if target not in parsed:
                problems.append(f"{source.name}: module {symbol} points at missing {target}")
                continue
            declared = parsed[target].get("parameters", {})
            passed = module["config"].get("params", {})
            unknown = set(passed) - set(declared)
            required = {name for name, spec in declared.items() if spec.get("default") is None}
            problems += [f"{source.name}: {symbol} passes unknown parameter {n}" for n in sorted(unknown)]
            problems += [
                f"{source.name}: {symbol} lacks parameter {n}" for n in sorted(required - set(passed))
            ]
    assert not problems, "\n".join(problems)


def test_module_outputs_used_are_declared(parsed: dict[Path, Any]) -> None:
    problems = []
    for source, template in parsed.items():
        modules = template.get("modules", {})
        text = source.read_text()
        for symbol, output in set(re.findall(r"\b(\w+)\.outputs\.(\w+)", text)):
            if symbol not in modules:
                continue
            outputs = parsed[module_path(source, modules[symbol])].get("outputs", {})
            if output not in outputs:
                problems.append(f"{source.name}: {symbol}.outputs.{output} is not an output of the module")
    assert not problems, "\n".join(problems)


def test_role_definitions_are_the_documented_built_in_roles(parsed: dict[Path, Any]) -> None:
    text = "\n".join(p.read_text() for p in BICEP_FILES)
    used = set(GUID.findall(text))
    forbidden = {name for name, guid in FORBIDDEN_ROLE_IDS.items() if guid in used}
    assert not forbidden, f"broad roles assigned: {forbidden}"
    # Every GUID in the templates is a known built-in role (no typo can hide a wrong role).
    assert used <= set(ROLE_IDS.values()), used - set(ROLE_IDS.values())
    roles = parsed[MAIN]["variables"]["roles"]["value"]
    assert roles == {
        "storageBlobDataOwner": ROLE_IDS["Storage Blob Data Owner"],
        "storageQueueDataContributor": ROLE_IDS["Storage Queue Data Contributor"],
        "storageTableDataContributor": ROLE_IDS["Storage Table Data Contributor"],
        "storageAccountKeyOperator": ROLE_IDS["Storage Account Key Operator Service Role"],
    }


def _role_vars(template: dict[str, Any]) -> dict[str, str]:
    return {
        name: spec["value"]
        for name, spec in template.get("variables", {}).items()
        if isinstance(spec.get("value"), str) and GUID.fullmatch(spec["value"])
    }


def test_aci_contributor_is_scoped_to_the_workspace_resource_group(parsed: dict[Path, Any]) -> None:
    access = parsed[INFRA / "modules" / "workspace-access.bicep"]
    assert set(_role_vars(access).values()) == {ROLE_IDS["Azure Container Instances Contributor Role"]}
    # No scope property: the assignment lands on the resource group the module is deployed to...
    assignment = access["resources"]["aciContributor"]["config"]
    assert "scope" not in assignment
    # ...which main.bicep makes the workspace resource group, not the subscription or the app's group.
    module = parsed[MAIN]["modules"]["workspaceAccess"]
    assert module["config"]["scope"] == "workspaceGroup"
    assert "workspaces" in parsed[MAIN]["resources"]["workspaceGroup"]["config"]["name"]


def test_storage_roles_sit_on_their_own_accounts(parsed: dict[Path, Any]) -> None:
    modules = parsed[MAIN]["modules"]

    def roles_of(symbol: str) -> set[str]:
        return {
            accessor(r["roleDefinitionId"]) for r in modules[symbol]["config"]["params"]["roleAssignments"]
        }

    assert roles_of("hostStorage") == {
        "roles.storageBlobDataOwner",
        "roles.storageQueueDataContributor",
        "roles.storageTableDataContributor",
    }
    assert roles_of("dataStorage") == {"roles.storageTableDataContributor"}
    assert roles_of("workspaceStorage") == {"roles.storageAccountKeyOperator"}
    storage = parsed[INFRA / "modules" / "storage.bicep"]
    assert storage["resources"]["roles"]["config"]["config"]["scope"] == "account"


def test_other_role_assignments_use_the_narrowest_resource(parsed: dict[Path, Any]) -> None:
    modules = INFRA / "modules"
    expected = {
        (modules / "registry.bicep", "pullRole"): ("registry", "AcrPull"),
        (modules / "identity.bicep", "apiMayAssignPullIdentity"): (
            "pullIdentity",
            "Managed Identity Operator",
        ),
        (modules / "monitoring.bicep", "publisherRole"): (
            "applicationInsights",
            "Monitoring Metrics Publisher",
        ),
        (modules / "keyvault.bicep", "readerRole"): ("vault", "Key Vault Secrets User"),
    }
    for (path, symbol), (scope, role) in expected.items():
        resource = parsed[path]["resources"][symbol]["config"]
        assert resource["scope"] == scope, (path.name, symbol)
        definition = json.dumps(resource["properties"]["roleDefinitionId"])
        variables = [name for name, guid in _role_vars(parsed[path]).items() if guid == ROLE_IDS[role]]
        assert any(f'"{name}"' in definition for name in variables), (path.name, symbol, definition)


def test_the_workspace_pull_identity_holds_only_acr_pull(parsed: dict[Path, Any]) -> None:
    # The pull identity is attached to container groups running user code: AcrPull only.
    main = parsed[MAIN]
    text = MAIN.read_text()
    assert "identity.outputs.pullPrincipalId" in text
    pull_users = [
        symbol
        for symbol, module in main["modules"].items()
        if "pullPrincipalId" in json.dumps(module["config"])
    ]
    assert pull_users == ["registry"], pull_users


def _account_params(parsed: dict[Path, Any], symbol: str) -> dict[str, Any]:
    params: dict[str, Any] = parsed[MAIN]["modules"][symbol]["config"]["params"]
    return params


def test_shared_key_access_is_off_except_for_the_workspace_account(parsed: dict[Path, Any]) -> None:
    storage = parsed[INFRA / "modules" / "storage.bicep"]
    assert storage["parameters"]["allowSharedKeyAccess"]["default"] is False
    account = storage["resources"]["account"]["config"]["properties"]
    assert account["allowSharedKeyAccess"] == "allowSharedKeyAccess"
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    assert _account_params(parsed, "hostStorage")["allowSharedKeyAccess"] is False
    assert _account_params(parsed, "dataStorage")["allowSharedKeyAccess"] is False
    assert _account_params(parsed, "workspaceStorage")["allowSharedKeyAccess"] is True
    assert parsed[MAIN]["modules"]["workspaceStorage"]["config"]["scope"] == "workspaceGroup"
    assert (
        _account_params(parsed, "workspaceStorage")["shareSoftDeleteDays"] == "workspaceShareSoftDeleteDays"
    )


def test_function_app_is_flex_consumption_python_with_identity_based_storage(parsed: dict[Path, Any]) -> None:
    app = parsed[INFRA / "modules" / "functionapp.bicep"]
    plan = app["resources"]["plan"]["config"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    site = app["resources"]["site"]["config"]
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    flex = properties["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert app["parameters"]["pythonVersion"]["default"] == "3.11"
    assert flex["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    runtime = app["variables"]["runtimeSettings"]["value"]
    assert runtime["AzureWebJobsStorage__accountName"] == "hostStorageName"
    assert runtime["AzureWebJobsStorage__credential"] == "managedidentity"
    assert runtime["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert "Authorization=AAD" in runtime["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    # A body too large for the API never reaches the worker: the local host's limit, not 100 MB.
    assert runtime["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"] == str(LOCAL_HOST_BODY_LIMIT)
    text = (INFRA / "modules" / "functionapp.bicep").read_text()
    # No connection string or key anywhere; Flex Consumption refuses the worker-runtime settings.
    for forbidden in ("AccountKey", "listKeys", "AzureWebJobsStorage:", "FUNCTIONS_WORKER_RUNTIME:"):
        assert forbidden not in text
    policies = {
        r["config"]["name"]: r["config"]["properties"]["allow"]
        for r in app["resources"].values()
        if r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert policies == {"ftp": False, "scm": False}


def test_monitoring_uses_entra_auth_and_log_analytics(parsed: dict[Path, Any]) -> None:
    monitoring = parsed[INFRA / "modules" / "monitoring.bicep"]["resources"]
    insights = monitoring["applicationInsights"]["config"]["properties"]
    assert insights["DisableLocalAuth"] is True
    assert accessor(insights["WorkspaceResourceId"]) == "logAnalytics.id"


def test_key_vault_uses_rbac_and_keeps_secrets_recoverable(parsed: dict[Path, Any]) -> None:
    vault = parsed[INFRA / "modules" / "keyvault.bicep"]["resources"]["vault"]["config"]["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True


def test_registry_has_no_admin_user_or_anonymous_pull(parsed: dict[Path, Any]) -> None:
    registry = parsed[INFRA / "modules" / "registry.bicep"]["resources"]["registry"]["config"]["properties"]
    assert registry["adminUserEnabled"] is False
    assert registry["anonymousPullEnabled"] is False


def test_outputs_include_the_api_url_and_what_the_hooks_and_workflows_read(parsed: dict[Path, Any]) -> None:
    outputs = set(parsed[MAIN]["outputs"])
    assert "API_URL" in outputs
    hook = (INFRA / "hooks" / "postprovision.sh").read_text()
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    read = set(re.findall(r"\$\{(AZURE_[A-Z_]+):[?-]", hook))
    read |= set(re.findall(r"azd env get-value (\w+)", deploy))
    assert read, "expected the hook and the deploy workflow to read azd outputs"
    assert read <= outputs, read - outputs


def test_parameters_file_matches_the_template(parsed: dict[Path, Any]) -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parsed[MAIN]["parameters"]
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(parameters), required - set(parameters)
    for name, spec in declared.items():
        if {"type": "secure"} in spec["decorators"] and name in parameters:
            value = parameters[name]["value"]
            assert re.fullmatch(r"\$\{[A-Z_]+\}", value), (
                f"secure parameter {name} must come from the azd env"
            )


def test_azure_yaml_deploys_the_function_app_and_runs_the_hook() -> None:
    config = probe("yaml", ROOT / "azure.yaml")[ROOT / "azure.yaml"]
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert config["services"]["api"] == {"project": ".", "language": "python", "host": "function"}
    hook = config["hooks"]["postprovision"]
    script = ROOT / hook["run"]
    assert script.is_file() and script.stat().st_mode & 0o111, script
    assert hook["shell"] == "sh" and script.read_text().startswith("#!/bin/sh")
    # azd finds the app by this tag.
    assert "'azd-service-name': 'api'" in (INFRA / "modules" / "functionapp.bicep").read_text()


SKIP_COMMENT = re.compile(r"checkov:skip=([A-Z0-9_]+):(.*)")


@pytest.fixture(scope="module")
def bicep_report() -> dict[str, Any]:
    return checkov("infra", "bicep")


def test_checkov_bicep_scan_has_no_failed_check(bicep_report: dict[str, Any]) -> None:
    summary = bicep_report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] >= 40, summary
    failed = [
        f"{c['check_id']} {c['check_name']} ({c['file_path']} {c['resource']})"
        for c in bicep_report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert summary["passed"] >= 20, summary


def test_every_checkov_skip_is_justified_and_used(bicep_report: dict[str, Any]) -> None:
    inline = set()
    for path in BICEP_FILES:
        for check_id, reason in SKIP_COMMENT.findall(path.read_text()):
            assert len(reason.strip()) >= 30, f"{path.name}: skip of {check_id} needs a real justification"
            inline.add((path.name, check_id))
    reported = set()
    for check in bicep_report["results"]["skipped_checks"]:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert comment and comment != "No comment provided", check["check_id"]
        reported.add((Path(check["file_path"]).name, check["check_id"]))
    # A skip comment that suppresses nothing is stale: remove it rather than keep an excuse around.
    assert inline == reported, {"unused": inline - reported, "unexpected": reported - inline}


def _param_block(text: str, name: str) -> str:
    """The decorators and declaration of one parameter of a .bicep file, as text."""
    lines = text.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(f"param {name} "))
    start = end
    while start > 0 and (lines[start - 1].startswith(("@", "  '", "])")) or lines[start - 1] == "])"):
        start -= 1
    return "\n".join(lines[start : end + 1])


def test_regions_offer_flex_consumption_and_zone_redundant_storage() -> None:
    text = (ROOT / "infra" / "main.bicep").read_text()
    for name in ("location", "workspaceLocation"):
        block = _param_block(text, name)
        allowed = set(re.findall(r"^  '([a-z0-9]+)'$", block, re.MULTILINE))
        assert {"eastus", "westeurope", "swedencentral"} <= allowed, name
        # Flex Consumption regions without availability zones (no ZRS) are left out.
        assert not allowed & {"westus", "northcentralus", "ukwest", "westcentralus", "australiasoutheast"}


def test_maximum_instance_count_within_flex_bounds() -> None:
    for path in (ROOT / "infra" / "main.bicep", ROOT / "infra" / "modules" / "functionapp.bicep"):
        block = _param_block(path.read_text(), "maximumInstanceCount")
        assert "@minValue(40)" in block and "@maxValue(1000)" in block, path


def test_the_custom_role_is_optional_and_named_per_subscription() -> None:
    text = (ROOT / "infra" / "main.bicep").read_text()
    assert "param createUsageReaderRole bool = false" in text
    assert re.search(r"roleDefinitions@[\d-]+' = if \(createUsageReaderRole\)", text)
    assert re.search(r"roleAssignments@[\d-]+' = if \(createUsageReaderRole\)", text)
    assert "uniqueString(subscription().id)" in re.search(r"roleName: '([^']+)'", text).group(1)


def test_the_image_tag_is_never_defaulted_to_latest() -> None:
    text = (ROOT / "infra" / "main.bicep").read_text()
    assert re.search(r"^param imageTag string$", text, re.MULTILINE), "a deployment must name the tag"
    parameters = (ROOT / "infra" / "main.parameters.json").read_text()
    assert '"${IMAGE_TAG}"' in parameters and "latest" not in parameters
