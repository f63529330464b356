"""Composition root: builds each adapter once per process, on first use.

The HTTP path needs only the settings, the token verifier and the store; compute and workspace
backends (and their SDKs) load only when an activity first asks for them.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from shared.settings import ComputeBackendName, Settings, get_settings

if TYPE_CHECKING:
    from shared.adapters.tables.records import TableEnvironmentStore
    from shared.auth import TokenVerifier
    from shared.domain.environment import Policy
    from shared.domain.placement import Placement
    from shared.services.environments import EnvironmentService
    from shared.services.forgetting import Forgetting
    from shared.services.metrics import ResourceMetrics
    from shared.services.my_data import MyData
    from shared.services.ports import ComputeBackend, WorkspaceAgent, WorkspaceStorage
    from shared.services.rate_limits import RateLimiter
    from shared.services.readiness import Readiness
    from shared.services.reconcile import Reconciler
    from shared.services.resizing import Resizing
    from shared.services.snapshots import SnapshotService
    from shared.services.sweeps import Sweeps

_lock = threading.Lock()


def aci_placement(region: str = "") -> Placement:
    """What one ACI container group can be, answered with a 400 before anything is created (the
    region's quota is the aci adapter's check at create):
    - at most 4 CPU / 16 GB for a Linux group of the standard SKU (container-instances-resource-and-
      quota-limits, "Standard Container Resources"; larger "big container groups" need capacity on
      demand and are not offered);
    - at least 1 CPU / 1 GB per group (container-instances-container-groups, "Minimum and maximum
      allocation");
    - CPU and memory to one decimal place (`az container create --cpu/--memory`).
    """
    from shared.domain.environment import CloudProvider
    from shared.domain.placement import Placement

    return Placement(
        CloudProvider.AZURE,
        region,
        max_cpu_cores=4.0,
        max_memory_gb=16.0,
        min_cpu_cores=1.0,
        min_memory_gb=1.0,
        step=0.1,
        label="Azure Container Instances",
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def placement(settings: Settings) -> Placement:
    from shared.domain.environment import CloudProvider
    from shared.domain.placement import Placement

    if settings.compute_backend is ComputeBackendName.ACI:
        return aci_placement(settings.azure_location)
    return Placement(CloudProvider.LOCAL, f"local-{settings.compute_backend.value}")


def policy() -> Policy:
    from shared.domain.environment import Policy

    settings = get_settings()
    return Policy(max_session_hours=settings.max_session_hours, retention_days=settings.retention_days)


@lru_cache(maxsize=1)
def store() -> TableEnvironmentStore:
    from shared.adapters.tables.records import TableEnvironmentStore

    with _lock:
        table_store = TableEnvironmentStore.from_settings(get_settings())
        table_store.ensure_tables()
    return table_store


@lru_cache(maxsize=1)
def readiness() -> Readiness:
    from shared.services.readiness import Readiness

    return Readiness(lambda: store().ping())


@lru_cache(maxsize=1)
def rate_limiter() -> RateLimiter:
    from shared.domain.rate_limits import AGENT_REPORTS_PER_MINUTE, Budget, Limit
    from shared.services.rate_limits import RateLimiter

    settings = get_settings()
    return RateLimiter(
        {
            Limit.COMMAND: Budget(settings.rate_commands_per_minute),
            Limit.READ: Budget(settings.rate_reads_per_minute),
            Limit.AUTH_FAILURE: Budget(settings.rate_auth_failures_per_minute),
            Limit.AGENT: Budget(AGENT_REPORTS_PER_MINUTE),
        }
    )


@lru_cache(maxsize=1)
def verifier() -> TokenVerifier:
    from shared.auth import TokenVerifier

    return TokenVerifier.from_settings(get_settings())


@lru_cache(maxsize=1)
def environments() -> EnvironmentService:
    from shared.services.environments import EnvironmentService

    settings = get_settings()
    return EnvironmentService(store(), settings, utcnow, placement(settings))


@lru_cache(maxsize=1)
def metrics() -> ResourceMetrics:
    from shared.services.metrics import ResourceMetrics

    return ResourceMetrics(environments(), store().samples, utcnow)


def resizing() -> Resizing:
    from shared.services.resizing import Resizing

    return Resizing(environments(), utcnow)


@lru_cache(maxsize=1)
def compute() -> ComputeBackend:
    from shared.adapters.factory import compute_backend

    return compute_backend(get_settings())


@lru_cache(maxsize=1)
def workspaces() -> WorkspaceStorage:
    from shared.adapters.factory import workspace_storage

    return workspace_storage(get_settings())


@lru_cache(maxsize=1)
def agent() -> WorkspaceAgent:
    """How a running workspace is asked for a snapshot: a simulated one answers itself; a real
    one reads its mailbox on the workspace storage."""
    if get_settings().compute_backend is ComputeBackendName.SIMULATED:
        return cast("WorkspaceAgent", compute())
    from shared.adapters.workspaces.mailbox import Mailbox

    return Mailbox(workspaces())


@lru_cache(maxsize=1)
def snapshots() -> SnapshotService:
    from shared.services.snapshots import SnapshotService

    return SnapshotService(environments(), store(), store().snapshot_logs, agent, get_settings(), utcnow)


def my_data() -> MyData:
    from shared.services.my_data import MyData

    return MyData(store(), utcnow)


def forgetting() -> Forgetting:
    """For the erasure's activities only: it holds the workspace backend (and its SDK)."""
    from shared.services.forgetting import Forgetting

    return Forgetting(environments(), store(), store().erasure, workspaces(), utcnow)


@lru_cache(maxsize=1)
def sweeps() -> Sweeps:
    from shared.services.sweeps import Sweeps

    budget = get_settings().monthly_budget_per_user
    return Sweeps(store(), environments(), utcnow, policy(), index=store().index, monthly_budget=budget)


@lru_cache(maxsize=1)
def reconciler() -> Reconciler:
    from shared.services.reconcile import Reconciler

    settings = get_settings()
    return Reconciler(
        store(),
        environments(),
        compute(),
        utcnow,
        # Past the provisioning deadline plus room for retries, an operation is stuck.
        stuck_after=timedelta(seconds=settings.provision_timeout_seconds * 2 + 300),
        orphan_grace=timedelta(minutes=settings.orphan_grace_minutes),
        index=store().index,
        orphans=store().orphans,
    )


def reset() -> None:
    """Forget every cached adapter (tests and the local host call this after changing settings)."""
    from shared.adapters.factory import clear_cache

    for cached in (
        store,
        verifier,
        rate_limiter,
        readiness,
        environments,
        metrics,
        compute,
        workspaces,
        agent,
        snapshots,
        sweeps,
        reconciler,
        get_settings,
    ):
        cached.cache_clear()
    clear_cache()
