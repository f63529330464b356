"""infra/hooks/postprovision.sh with a fake `az`: generates only missing Key Vault secrets, never
replaces one, never lets a value reach a command line or the output, and waits out role
propagation instead of mistaking a refused listing for an empty vault."""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.tooling import ROOT

HOOK = ROOT / "infra" / "hooks" / "postprovision.sh"

FAKE_AZ = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >>"$RECORD/az.log"
case "$1 $2 $3" in
  "keyvault secret list")
    count=$(( $(cat "$RECORD/list.count" 2>/dev/null || echo 0) + 1 ))
    echo "$count" >"$RECORD/list.count"
    if [ "$count" -le "${FAIL_LISTS:-0}" ]; then
      echo "(Forbidden) Caller is not authorized" >&2
      exit 1
    fi
    for name in ${EXISTING_SECRETS:-}; do echo "$name"; done
    ;;
  "keyvault secret set")
    name="" file=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --name) name="$2"; shift ;;
        --file) file="$2"; shift ;;
      esac
      shift
    done
    cp "$file" "$RECORD/secret.$name"
    stat -c '%a' "$file" >"$RECORD/secret.$name.mode"
    ;;
  "functionapp restart "*) ;;
  "provider show --namespace")
    echo "${PROVIDER_STATE:-NotRegistered}"
    ;;
  "provider register --namespace")
    [ -z "${REGISTER_FAILS:-}" ] || { echo "(AuthorizationFailed) no register action" >&2; exit 1; }
    ;;
  *) echo "fake az: unexpected $*" >&2; exit 2 ;;
esac
"""


@dataclass
class Hook:
    record: Path
    env: dict[str, str]

    def run(self, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(HOOK)], env=self.env | extra, capture_output=True, text=True, timeout=60, check=False
        )

    def az_calls(self) -> list[str]:
        log = self.record / "az.log"
        return log.read_text().splitlines() if log.exists() else []

    def secret(self, name: str) -> str | None:
        path = self.record / f"secret.{name}"
        return path.read_text() if path.exists() else None


@pytest.fixture
def hook(tmp_path: Path) -> Hook:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "RECORD": str(record),
        "AZURE_KEY_VAULT_NAME": "kv-test",
        "AZURE_FUNCTION_APP_NAME": "func-dev8-test",
        "AZURE_RESOURCE_GROUP": "rg-test",
        "HOOK_RETRY_SECONDS": "0",
    }
    return Hook(record, env)


def test_generates_both_secrets_in_a_new_vault_and_restarts_the_app(hook: Hook) -> None:
    result = hook.run()
    assert result.returncode == 0, result.stderr
    jwt, key = hook.secret("dev8-jwt-secret"), hook.secret("dev8-secrets-key")
    assert jwt is not None and key is not None
    assert len(base64.b64decode(jwt, validate=True)) == 48  # >= 32 bytes, as the app requires
    assert len(base64.b64decode(key, validate=True)) == 32  # exactly what DEV8_SECRETS_KEY needs
    assert (hook.record / "secret.dev8-jwt-secret.mode").read_text().strip() == "600"
    calls = "\n".join(hook.az_calls())
    output = result.stdout + result.stderr
    for value in (jwt, key):
        assert value not in calls, "a secret value reached az's command line"
        assert value not in output, "a secret value was printed"
    assert sum("functionapp restart" in c for c in hook.az_calls()) == 1


def test_existing_secrets_are_never_replaced(hook: Hook) -> None:
    result = hook.run(EXISTING_SECRETS="dev8-jwt-secret dev8-secrets-key other")
    assert result.returncode == 0, result.stderr
    assert not [c for c in hook.az_calls() if "secret set" in c or "restart" in c]
    assert "secret dev8-secrets-key present" in result.stderr


def test_only_the_missing_secret_is_generated(hook: Hook) -> None:
    assert hook.run(EXISTING_SECRETS="dev8-secrets-key").returncode == 0
    assert hook.secret("dev8-jwt-secret") is not None
    assert hook.secret("dev8-secrets-key") is None


def test_no_jwt_secret_in_jwks_mode(hook: Hook) -> None:
    assert hook.run(JWT_JWKS_URL="https://login.example.com/keys").returncode == 0
    assert hook.secret("dev8-jwt-secret") is None
    assert hook.secret("dev8-secrets-key") is not None


def test_waits_for_role_propagation(hook: Hook) -> None:
    result = hook.run(FAIL_LISTS="2", EXISTING_SECRETS="dev8-secrets-key dev8-jwt-secret")
    assert result.returncode == 0, result.stderr
    assert sum("secret list" in c for c in hook.az_calls()) == 3
    assert not [c for c in hook.az_calls() if "secret set" in c]


def test_a_vault_it_cannot_read_is_never_treated_as_empty(hook: Hook) -> None:
    result = hook.run(FAIL_LISTS="99", HOOK_ATTEMPTS="3")
    assert result.returncode != 0
    assert "cannot list the secrets" in result.stderr
    assert not [c for c in hook.az_calls() if "secret set" in c]


def test_needs_the_azd_outputs(hook: Hook) -> None:
    env = dict(hook.env)
    del env["AZURE_KEY_VAULT_NAME"]
    result = subprocess.run(["sh", str(HOOK)], env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "AZURE_KEY_VAULT_NAME" in result.stderr
    assert hook.az_calls() == []


def test_registers_the_container_instance_provider_once(hook: Hook) -> None:
    result = hook.run(EXISTING_SECRETS="dev8-jwt-secret dev8-secrets-key")
    assert result.returncode == 0, result.stderr
    registers = [c for c in hook.az_calls() if c.startswith("provider register")]
    assert registers == ["provider register --namespace Microsoft.ContainerInstance --wait --output none"]


def test_an_already_registered_provider_is_left_alone(hook: Hook) -> None:
    result = hook.run(EXISTING_SECRETS="dev8-jwt-secret dev8-secrets-key", PROVIDER_STATE="Registered")
    assert result.returncode == 0, result.stderr
    assert not [c for c in hook.az_calls() if c.startswith("provider register")]
    assert "Microsoft.ContainerInstance registered" in result.stderr


def test_a_registration_it_may_not_do_says_who_must(hook: Hook) -> None:
    result = hook.run(EXISTING_SECRETS="dev8-jwt-secret dev8-secrets-key", REGISTER_FAILS="1")
    assert result.returncode != 0
    assert "az provider register --namespace Microsoft.ContainerInstance" in result.stderr
