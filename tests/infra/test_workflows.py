""".github/workflows: ci.yml runs lint, types, the tests and a dependency scan; deploy.yml builds the
images and deploys on main with OIDC federation only. Parsed as YAML and scanned by checkov."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.tooling import ROOT, checkov, probe

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
IMAGES = WORKFLOWS / "images.yml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"


@pytest.fixture(scope="module")
def workflows() -> dict[Path, Any]:
    return probe("yaml", CI, DEPLOY, IMAGES, DEPENDABOT)


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as true.
    value = workflow.get("on", workflow.get("true"))
    assert isinstance(value, dict), value
    return value


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


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


def test_deploy_ships_the_images_it_built_pinned_to_the_commit(workflows: dict[Path, Any]) -> None:
    deploy = workflows[DEPLOY]
    images = deploy["jobs"]["images"]
    assert images["uses"] == "./.github/workflows/images.yml" and images["with"] == {"push": True}
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "images"
    assert job["env"]["IMAGE_TAG"] == "${{ github.sha }}"  # DEV8_IMAGE_TAG, through main.parameters.json
    login = step_index(deploy, r"azure/login@")
    provision = step_index(deploy, r"azd provision")
    ship = step_index(deploy, r"azd deploy api")
    assert login < provision < ship
    assert "if" not in steps(deploy)[provision], "every deploy provisions: that is what pins the tag"
    assert not any("env refresh" in r for r in runs(deploy)), "refresh fails before the first provision"
    assert ":latest" not in DEPLOY.read_text() and "IMAGE_TAG=latest" not in DEPLOY.read_text()


def test_images_are_built_scanned_and_pushed_with_the_commit_tag_only(workflows: dict[Path, Any]) -> None:
    images = workflows[IMAGES]
    assert "pull_request" in triggers(images) and "workflow_call" in triggers(images)
    assert images["permissions"]["id-token"] == "write"
    build = step_index(images, r"docker/build\.sh local")
    scan = step_index(images, r"--severity HIGH,CRITICAL")
    push = step_index(images, r"docker push")
    assert build < scan < push
    scan_run = steps(images)[scan]["run"]
    assert "--exit-code 1" in scan_run and re.search(
        r"aquasec/trivy:\d", images["jobs"]["images"]["env"]["TRIVY_IMAGE"]
    )
    for run_text in (scan_run, steps(images)[push]["run"]):  # every image docker/ holds, by its directory
        assert "for dockerfile in docker/*/Dockerfile; do" in run_text and '"dev8-$image:$TAG"' in run_text
    assert steps(images)[push]["if"] == "${{ inputs.push }}"
    assert ":latest" not in (WORKFLOWS / "images.yml").read_text()
    assert "secrets." not in (WORKFLOWS / "images.yml").read_text()


def test_dependabot_covers_pip_npm_docker_and_actions(workflows: dict[Path, Any]) -> None:
    config = workflows[DEPENDABOT]
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(ecosystems) == {"pip", "npm", "docker", "github-actions"}
    docker_dirs = ecosystems["docker"]["directories"]
    images = [f"/docker/{p.parent.name}" for p in (ROOT / "docker").glob("*/Dockerfile")]
    assert len(images) >= 6 and all(any(fnmatch.fnmatch(i, d) for d in docker_dirs) for i in images)


def test_ci_has_a_security_job(workflows: dict[Path, Any]) -> None:
    security = workflows[CI]["jobs"]["security"]
    text = " ".join(step.get("run", "") for step in security["steps"])
    assert "ruff check --select S" in text and "pip-audit --strict" in text


def test_actions_are_pinned_to_a_release(workflows: dict[Path, Any]) -> None:
    for path, workflow in workflows.items():
        if path == DEPENDABOT:
            continue
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
