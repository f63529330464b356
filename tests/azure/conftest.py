"""Fixtures of the Azure adapter tests: the real adapters on the real SDK clients, with the ARM and
Azure Files simulators as their transports and a credential that hands out a fake token."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from shared.adapters.azure_common import StorageAccountKey
from shared.adapters.compute.aci import AciCompute
from shared.adapters.compute.aci_group import GroupSettings
from shared.adapters.workspaces.azurefiles import AzureFilesWorkspaces
from shared.services.ports import ComputeSpec, Workspace
from tests.azure.sim_arm import ArmSimulator
from tests.azure.sim_files import FilesSimulator

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
RESOURCE_GROUP = "rg-dev8-workspaces"
ACCOUNT = "stwsdev8sim"
REGISTRY = "acrdev8sim.azurecr.io"
PULL_IDENTITY = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dev8/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-ws-pull-sim"
)
PASSWORD = "plain-ide-password-Zq8rT2"  # what the environment's record holds, sealed
GITHUB_TOKEN = "github-token-for-the-simulator-only"


class FakeCredential:
    """A TokenCredential: the simulators check no signature, the pipeline only needs a token."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken("simulated-arm-token", int(time.time()) + 3600)


def group_settings(**overrides: Any) -> GroupSettings:
    values: dict[str, Any] = {
        "subscription_id": SUBSCRIPTION,
        "resource_group": RESOURCE_GROUP,
        "location": "eastus",
        "registry": REGISTRY,
        "image_tag": "v42",
        "storage_account": ACCOUNT,
        "registry_identity_id": PULL_IDENTITY,
        "owner_tag_key": b"k" * 32,
    }
    values.update(overrides)
    return GroupSettings(**values)


def make_spec(environment_id: str = "env-1a2b3c4d", **overrides: Any) -> ComputeSpec:
    short = environment_id.removeprefix("env-")
    values: dict[str, Any] = {
        "name": f"dev8-{short}",
        "environment_id": environment_id,
        "owner": "user-sub-42",
        "image": f"{REGISTRY}/dev8-node:v42",
        "cpu_cores": 2.0,
        "memory_gb": 4.0,
        "ports": (3000,),
        "environment_variables": {"DEV8_ENVIRONMENT_ID": environment_id, "NODE_ENV": "development"},
        "workspace": Workspace(name=f"ws-{short}", location=f"ws-{short}", quota_gb=50),
        "secure_environment": {"PASSWORD": PASSWORD, "GITHUB_TOKEN": GITHUB_TOKEN},
    }
    values.update(overrides)
    return ComputeSpec(**values)


@pytest.fixture
def arm() -> ArmSimulator:
    return ArmSimulator(SUBSCRIPTION, RESOURCE_GROUP, seed=3)


@pytest.fixture
def files() -> FilesSimulator:
    return FilesSimulator(ACCOUNT)


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def storage_key(arm: ArmSimulator, credential: FakeCredential) -> StorageAccountKey:
    return StorageAccountKey(credential, SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT, transport=arm)


@pytest.fixture
def aci(arm: ArmSimulator, credential: FakeCredential, storage_key: StorageAccountKey) -> AciCompute:
    return AciCompute(group_settings(), credential, storage_key, transport=arm, https_probe=arm.https_answers)


@pytest.fixture
def workspaces(files: FilesSimulator, storage_key: StorageAccountKey) -> AzureFilesWorkspaces:
    return AzureFilesWorkspaces(storage_key, transport=files, sleep=files.sleep)
