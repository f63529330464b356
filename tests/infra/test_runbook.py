"""docs/runbook.md stays true to the code: resource names, secret names and azd outputs it uses."""

from __future__ import annotations

import re

from shared.domain.resources import compute_name, workspace_name
from tests.infra.tooling import ROOT

RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()
MAIN = (ROOT / "infra" / "main.bicep").read_text()
KEYVAULT = (ROOT / "infra" / "modules" / "keyvault.bicep").read_text()


def test_covers_the_five_procedures() -> None:
    headings = re.findall(r"^## (.+)$", RUNBOOK, flags=re.MULTILINE)
    for needed in ("Deploy from zero", "Rotate the JWT secret", "container logs", "ACI quotas", "snapshot"):
        assert any(needed in heading for heading in headings), needed


def test_names_match_the_backend() -> None:
    assert compute_name("env-1a2b3c4d") == "dev8-1a2b3c4d"
    assert workspace_name("env-1a2b3c4d") == "ws-1a2b3c4d"
    assert 'az container logs --resource-group "$WORKSPACE_RESOURCE_GROUP" --name dev8-1a2b3c4d' in RUNBOOK
    assert "--name ws-1a2b3c4d" in RUNBOOK
    for secret in re.findall(r"var \w+Name = '(dev8-[a-z-]+)'", KEYVAULT):
        assert secret in RUNBOOK, secret


def test_uses_only_outputs_the_template_declares() -> None:
    outputs = set(re.findall(r"^output (\w+) ", MAIN, flags=re.MULTILINE))
    used = set(re.findall(r"\$\{?((?:AZURE|WORKSPACE|API)_[A-Z_]+)", RUNBOOK))
    assert used, "expected the runbook to use azd outputs"
    assert used <= outputs, used - outputs
