"""What the Azure adapters (aci, azurefiles) share: credentials, SDK retry settings, error mapping
and the workspace storage account key.

Nothing here imports an Azure SDK at module level: the adapters themselves are imported only when
settings name them, and this module is imported only by them.

Retries are the SDKs' own pipeline policies, configured here, never loops around calls: azure-core's
RetryPolicy (ARM clients) retries 408/429/5xx and connection errors with exponential backoff and
waits at least what a Retry-After header asks; the Files client's ExponentialRetry does the same
for the data plane. Both sleep through the transport (`transport.sleep`), which is what tests
replace so nothing really waits. What is still failing after those retries is mapped to
TransientBackendError (the orchestration retries the activity) or PermanentBackendError (the
operation fails with a human reason).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.errors import AuthorizationRefused, PermanentBackendError, TransientBackendError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.pipeline.transport import HttpTransport

# ARM (azure-core RetryPolicy): up to 6 retries, 1, 2, 4, 8... seconds apart (capped at 60), or
# longer when Retry-After asks for it. Sized to ride out ordinary ARM throttling inside one
# activity; a longer storm surfaces as a transient error and the orchestration retries the activity.
ARM_RETRY: dict[str, Any] = {
    "retry_total": 6,
    "retry_connect": 3,
    "retry_read": 3,
    "retry_status": 6,
    "retry_backoff_factor": 1.0,
    "retry_backoff_max": 60,
}
# Seconds between polls of a long-running ARM operation when the service sends no Retry-After.
ARM_POLLING_INTERVAL = 5
# Azure Files data plane (storage ExponentialRetry): 15 s, then +3^n seconds, 4 retries.
FILES_RETRY: dict[str, Any] = {"retry_total": 4}

# Status codes worth retrying once the SDK's own retries are spent (the orchestration retries the
# activity later). 409 is ARM's "another operation is in progress on this resource".
TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# Error codes that no retry can fix, whatever their status (409 included).
PERMANENT_CODES = frozenset(
    {
        # Azure Files: at most 200 snapshots per share (storage-files-scale-targets).
        "ShareSnapshotCountExceeded",
    }
)
# ARM's answers to an identity without the role the call needs (Files answers
# AuthorizationPermissionMismatch / AuthorizationFailure).
AUTHORIZATION_CODES = frozenset(
    {
        "AuthorizationFailed",
        "LinkedAuthorizationFailed",
        "AuthorizationPermissionMismatch",
        "AuthorizationFailure",
    }
)
# The subscription has not registered the resource provider: an operator must (ARM answers 409;
# learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider).
UNREGISTERED = "MissingSubscriptionRegistration"


def credential(managed_identity_client_id: str | None) -> TokenCredential:
    """The user-assigned managed identity when its client id is set (production), else
    DefaultAzureCredential (environment, workload identity, Azure CLI... for a developer)."""
    if managed_identity_client_id:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=managed_identity_client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def async_credential(managed_identity_client_id: str | None) -> AsyncTokenCredential:
    """`credential`'s async twin, for clients on an event loop (the table reads of loop.py)."""
    if managed_identity_client_id:
        from azure.identity.aio import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=managed_identity_client_id)
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


def client_options(transport: HttpTransport[Any, Any] | None) -> dict[str, Any]:
    """Keyword arguments of every ARM client: retry settings and, in tests, the transport."""
    options: dict[str, Any] = dict(ARM_RETRY)
    options["polling_interval"] = ARM_POLLING_INTERVAL
    if transport is not None:
        options["transport"] = transport
    return options


def status_of(error: BaseException) -> int | None:
    return getattr(error, "status_code", None)


def error_code(error: BaseException) -> str | None:
    """The service's error code (ARM `error.code`, storage `x-ms-error-code`), when it sent one."""
    code = getattr(error, "error_code", None)
    if code:
        return str(getattr(code, "value", code))  # storage SDKs give a StorageErrorCode enum
    inner_code = getattr(getattr(error, "error", None), "code", None)
    return str(inner_code) if inner_code else None


def _message(error: BaseException) -> str:
    inner = getattr(error, "error", None)
    return str(getattr(inner, "message", None) or getattr(error, "message", None) or error)


def describe(error: BaseException) -> str:
    """One short line for a status_reason or a log: the code and the first line of the message."""
    from azure.core.exceptions import HttpResponseError

    if isinstance(error, HttpResponseError):
        inner = getattr(error, "error", None)
        message = getattr(inner, "message", None) or error.reason or str(error)
        code = error_code(error)
        text = f"{code}: {message}" if code else str(message)
    else:
        text = str(error) or type(error).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first[:300]


def translate(error: BaseException, action: str) -> Exception:
    """The backend error an Azure SDK failure becomes (returned, for the caller to raise)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    reason = f"{action}: {describe(error)}"
    if isinstance(error, ClientAuthenticationError):
        # A refused or unobtainable token (e.g. IMDS not ready on a cold start): the orchestration
        # tries again for a bounded time, then fails with this reason.
        return AuthorizationRefused(f"{action}: Azure refused the app's credentials ({describe(error)})")
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return TransientBackendError(reason)  # connection failures and timeouts
    if isinstance(error, HttpResponseError):
        status = status_of(error)
        code = error_code(error) or ""
        if code == UNREGISTERED:
            return PermanentBackendError(
                f"{action}: the subscription has not registered the Microsoft.ContainerInstance resource "
                "provider; run `az provider register --namespace Microsoft.ContainerInstance --wait` "
                "(docs/runbook.md)"
            )
        if code in PERMANENT_CODES:
            return PermanentBackendError(reason)
        if status == 403 and code in AUTHORIZATION_CODES:
            # Often a role assignment still propagating after a deploy: retried for a while.
            return AuthorizationRefused(f"{reason} (the app's identity lacks a role assignment)")
        if "quota" in code.lower() or "quota" in _message(error).lower():
            # e.g. ContainerGroupQuotaReached, or 409 ServiceUnavailable "container group quota
            # 'ContainerGroups' exceeded" (SupportArticles: service-unavailable-container-group-
            # quota-exceeded): waiting won't help. A 409 about capacity stays transient.
            return PermanentBackendError(
                f"{reason} (an Azure Container Instances quota is full: stop or delete environments, "
                "or raise the quota; docs/runbook.md)"
            )
        if status is None or status in TRANSIENT_STATUS:
            return TransientBackendError(reason)
        return PermanentBackendError(reason)  # 400, 403, 404 where something must exist...
    return TransientBackendError(reason)  # any other SDK failure (e.g. a polling hiccup)


@contextmanager
def azure_errors(action: str) -> Iterator[None]:
    """Run SDK calls, turning their failures into Transient/PermanentBackendError."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as error:
        raise translate(error, action) from error


def is_not_found(error: BaseException) -> bool:
    return status_of(error) == 404


class StorageAccountKey:
    """The workspace storage account's key, listed through ARM with the app's identity.

    ACI mounts Azure Files only with an account key, and share management (create, snapshot,
    delete) uses it too. It is read at run time and kept in this process's memory only (never in a
    table or a log); `forget()` drops it, e.g. after the data plane refused it once keys rotated.
    """

    def __init__(
        self,
        credential: TokenCredential,
        subscription_id: str,
        resource_group: str,
        account: str,
        *,
        transport: HttpTransport[Any, Any] | None = None,
    ) -> None:
        self.account = account
        self._credential = credential
        self._subscription_id = subscription_id
        self._resource_group = resource_group
        self._transport = transport
        self._lock = threading.Lock()
        self._key: str | None = None
        self._client: Any = None

    def get(self) -> str:
        with self._lock:
            if self._key is None:
                self._key = self._list_first_key()
            return self._key

    def forget(self) -> None:
        with self._lock:
            self._key = None

    def _list_first_key(self) -> str:
        if self._client is None:
            from azure.mgmt.storage import StorageManagementClient

            self._client = StorageManagementClient(
                self._credential, self._subscription_id, **client_options(self._transport)
            )
        with azure_errors(f"listing the keys of storage account {self.account}"):
            result = self._client.storage_accounts.list_keys(self._resource_group, self.account)
        # The model is a mapping, so its `keys` field is `keys_property`.
        keys = [key.value for key in (result.keys_property or []) if key.value]
        if not keys:
            raise PermanentBackendError(f"storage account {self.account} returned no keys")
        return str(keys[0])


_keys_lock = threading.Lock()
_keys: dict[tuple[str, str, str, object], StorageAccountKey] = {}


def account_key(
    credential: TokenCredential,
    subscription_id: str,
    resource_group: str,
    account: str,
    *,
    transport: HttpTransport[Any, Any] | None = None,
) -> StorageAccountKey:
    """The one key cache of a storage account in this process, shared by the `aci` adapter (which
    mounts the share with it) and the `azurefiles` adapter (which signs with it): when either finds
    the key stale (a 403 from Files, a FailedMount from ACI) and forgets it, both list it again."""
    with _keys_lock:
        slot = (subscription_id, resource_group, account, transport)
        if slot not in _keys:
            _keys[slot] = StorageAccountKey(
                credential, subscription_id, resource_group, account, transport=transport
            )
        return _keys[slot]


def forget_account_keys() -> None:
    """Drop every cached key source (tests, and the composition root's reset)."""
    with _keys_lock:
        _keys.clear()
