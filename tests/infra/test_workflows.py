""".github/workflows: ci.yml runs lint, types, the tests and a dependency scan; deploy.yml builds the
images and deploys on main with OIDC federation only. Parsed as YAML and scanned by checkov."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.tooling import ROOT, checkov, probe

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DEPLOY = WORKFLOWS / "deploy.yml"


@pytest.fixture(scope="module")
def workflows() -> dict[Path, Any]:
    return probe("yaml", CI, DEPLOY)


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as true.
    value = workflow.get("on", workflow.get("true"))
    assert isinstance(value, dict), value
    return value


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def runs(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for step in steps(workflow) if "run" in step]


def step_index(workflow: dict[str, Any], pattern: str) -> int:
    for index, step in enumerate(steps(workflow)):
        if re.search(pattern, step.get("run", "") + " " + step.get("uses", "")):
            return index
    raise AssertionError(f"no step matches {pattern!r}")


def test_ci_runs_lint_types_tests_and_a_dependency_scan(workflows: dict[Path, Any]) -> None:
    ci = workflows[CI]
    on = triggers(ci)
    assert on["push"]["branches"] == ["main"] and "pull_request" in on
    assert ci["permissions"] == {"contents": "read"}
    python = next(s for s in steps(ci) if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.11"
    order = [
        step_index(ci, r"actions/checkout@"),
        step_index(ci, r"pip install -r requirements-dev\.txt"),
        step_index(ci, r"npm ci"),
        step_index(ci, r"scripts/install-infra-tools\.sh"),
        step_index(ci, r"ruff check"),
        step_index(ci, r"make lint"),
        step_index(ci, r"make test"),
    ]
    assert order == sorted(order), order
    audit = next(r for r in runs(ci) if "pip-audit" in r)
    assert re.search(r"pip-audit==\d", audit) and "-r requirements.txt" in audit
    assert ci["jobs"]["test"]["env"]["CI"] == "true"


def test_deploy_uses_oidc_and_no_long_lived_secret(workflows: dict[Path, Any]) -> None:
    deploy = workflows[DEPLOY]
    assert triggers(deploy)["push"]["branches"] == ["main"]
    assert deploy["permissions"]["id-token"] == "write"
    login = next(s for s in steps(deploy) if s.get("uses", "").startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    text = DEPLOY.read_text()
    assert "secrets." not in text, "deploy must not use stored secrets (OIDC federation only)"
    for forbidden in ("client-secret", "creds:", "AZURE_CLIENT_SECRET", "--password", "admin-enabled"):
        assert forbidden not in text
    azd_login = next(r for r in runs(deploy) if "azd auth login" in r)
    assert "--federated-credential-provider github" in azd_login
    # An `environment:` would change the OIDC subject away from the branch azd federates.
    assert all("environment" not in job for job in deploy["jobs"].values())


def test_deploy_builds_the_images_then_deploys_the_api(workflows: dict[Path, Any]) -> None:
    deploy = workflows[DEPLOY]
    login = step_index(deploy, r"azure/login@")
    build = step_index(deploy, r"docker/build\.sh acr ")
    ship = step_index(deploy, r"azd deploy api")
    assert login < build < ship
    build_run = steps(deploy)[build]["run"]
    assert "AZURE_CONTAINER_REGISTRY_NAME" in build_run and "GITHUB_SHA" in build_run


def test_actions_are_pinned_to_a_release(workflows: dict[Path, Any]) -> None:
    for path, workflow in workflows.items():
        for step in steps(workflow):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"]), (
                    path,
                    step,
                )


def test_checkov_github_actions_scan_has_no_failed_check() -> None:
    report = checkov(".github", "github_actions")
    assert report["summary"]["passed"] > 0, report["summary"]
    failed = [f"{c['check_id']} {c['file_path']}" for c in report["results"]["failed_checks"]]
    assert not failed, failed
