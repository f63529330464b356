"""What a local code-server process is given: the user's variables and secrets and its password,
never the agents' credentials nor the host's own secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from shared.adapters.compute.code_server import process_environment
from shared.agent_tokens import AGENT_TOKEN_VARIABLE
from shared.secrets import SNAPSHOT_PASSWORD_KEY
from shared.services.ports import ComputeSpec, Workspace


def test_the_agents_credentials_and_the_hosts_secrets_stay_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DEV8_SECRETS_KEY", "host-only")
    spec = ComputeSpec(
        name="dev8-0123456789abcdef",
        environment_id="env-0123456789abcdef",
        owner="alice",
        image="dev8-node",
        cpu_cores=1,
        memory_gb=2,
        ports=(3000,),
        environment_variables={"EDITOR": "vim", "PORT": "1"},
        workspace=Workspace("ws-0123456789abcdef", str(tmp_path), 10),
        secure_environment={
            "GITHUB_TOKEN": "ghp_user",
            AGENT_TOKEN_VARIABLE: "agent-token",
            SNAPSHOT_PASSWORD_KEY: "restic-password",
        },
    )
    environment = process_environment(spec, "ide-password", tmp_path)
    # Only an argon2 hash of the IDE password, as on ACI (ide_password.py).
    assert "PASSWORD" not in environment
    assert PasswordHasher().verify(environment["HASHED_PASSWORD"], "ide-password")
    assert environment["EDITOR"] == "vim" and environment["GITHUB_TOKEN"] == "ghp_user"
    assert "PORT" not in environment  # code-server's own settings are the backend's
    for kept_out in (AGENT_TOKEN_VARIABLE, SNAPSHOT_PASSWORD_KEY, "DEV8_SECRETS_KEY"):
        assert kept_out not in environment


def test_the_ide_password_hash_is_argon2id_at_owasps_minimum_cost() -> None:
    from shared.adapters.compute import ide_password

    first, second = ide_password.hashed("ide-password"), ide_password.hashed("ide-password")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and first != second  # salted
    assert PasswordHasher().verify(first, "ide-password")
