"""Chooses the compute and workspace adapters named by settings, importing only the one in use.

One instance per process and settings: the local host's worker threads must share the same
in-memory simulated compute, so the cache is guarded by a lock rather than left to lru_cache.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, cast

from shared.services.ports import ComputeBackend, WorkspaceStorage
from shared.settings import ComputeBackendName, Settings, SettingsError, WorkspaceBackendName

# name -> (module, class); each class has `from_settings(settings)`. New adapters add a line here.
_COMPUTE: dict[ComputeBackendName, tuple[str, str]] = {
    ComputeBackendName.SIMULATED: ("shared.adapters.compute.simulated", "SimulatedCompute"),
    ComputeBackendName.LOCAL: ("shared.adapters.compute.local", "LocalCompute"),
    ComputeBackendName.ACI: ("shared.adapters.compute.aci", "AciCompute"),
}
_WORKSPACE: dict[WorkspaceBackendName, tuple[str, str]] = {
    WorkspaceBackendName.LOCAL: ("shared.adapters.workspaces.local", "LocalWorkspaceStorage"),
    WorkspaceBackendName.AZUREFILES: ("shared.adapters.workspaces.azurefiles", "AzureFilesWorkspaces"),
}

_lock = threading.Lock()
_instances: dict[tuple[str, Settings], Any] = {}


def compute_backend(settings: Settings) -> ComputeBackend:
    adapter = _COMPUTE.get(settings.compute_backend)
    if adapter is None:
        raise _unavailable("DEV8_COMPUTE_BACKEND", settings.compute_backend)
    return cast(ComputeBackend, _instance("compute", adapter, settings))


def workspace_storage(settings: Settings) -> WorkspaceStorage:
    adapter = _WORKSPACE.get(settings.workspace_backend)
    if adapter is None:
        raise _unavailable("DEV8_WORKSPACE_BACKEND", settings.workspace_backend)
    return cast(WorkspaceStorage, _instance("workspace", adapter, settings))


def clear_cache() -> None:
    """Forget the built adapters (tests), and the storage key the Azure ones share."""
    with _lock:
        _instances.clear()
    from shared.adapters.azure_common import forget_account_keys

    forget_account_keys()


def _instance(kind: str, adapter: tuple[str, str], settings: Settings) -> Any:
    with _lock:
        key = (kind, settings)
        if key not in _instances:
            module_name, class_name = adapter
            adapter_class = getattr(importlib.import_module(module_name), class_name)
            _instances[key] = adapter_class.from_settings(settings)
        return _instances[key]


def _unavailable(setting: str, value: str) -> SettingsError:
    return SettingsError(f"setting {setting}={value} cannot be used: unknown backend")
