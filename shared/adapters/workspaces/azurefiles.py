"""`azurefiles` workspaces: one Azure Files share per environment in the workspace storage account.

The WorkspaceStorage port (ensure, exists, delete with snapshots, snapshot, restore), where:
- `snapshot(name) -> str`: a share snapshot; returns its id (the x-ms-snapshot timestamp);
- `restore(name, snapshot, target, quota_gb)`: creates share `target` if absent and fills it from
  the snapshot with `copy_snapshot`, which copies every file server-side, creating directories as
  needed. Files present in both are overwritten; files that exist only in the target are kept (a
  restore never deletes work). It returns once every copy has finished. Only environments
  retired before snapshots moved into the workspace's restic repository still need it;
- `copy(name, folder, target, quota_gb)`: the same server-side copy for one folder of the live
  share (the repository, when an environment is restored from one of its snapshots);
- `write_file`/`read_file`/`delete_file`: the small files of the snapshot agent's mailbox.

Authentication: the account key, listed through ARM with the app's managed identity (Storage
Account Key Operator on this account only, see infra/). Share-level operations (create with a
quota, snapshot, delete with snapshots) are not offered over the Files data plane with Entra
tokens, and ACI needs that same key to mount the share, so one credential serves both. The key is
kept in memory only; when the service refuses it (keys rotated), it is forgotten and the activity
retried with a freshly listed one.

Retries are the Files client's ExponentialRetry (azure_common.FILES_RETRY), sleeping through its
transport; what still fails becomes Transient/PermanentBackendError.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.adapters.azure_common import (
    FILES_RETRY,
    StorageAccountKey,
    account_key,
    azure_errors,
    error_code,
    is_not_found,
    status_of,
)
from shared.adapters.azure_common import credential as default_credential
from shared.errors import PermanentBackendError, TransientBackendError
from shared.services.ports import Workspace
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

# How long restore() waits for server-side copies still pending after they were started.
COPY_WAIT_SECONDS = 600.0
COPY_POLL_SECONDS = 2.0


class AzureFilesWorkspaces:
    """A `WorkspaceStorage` of Azure Files shares named by `workspace_name()`; share = location."""

    def __init__(
        self,
        key: StorageAccountKey,
        *,
        endpoint_suffix: str = "core.windows.net",
        transport: HttpTransport[Any, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = key.account
        self.account_url = f"https://{key.account}.file.{endpoint_suffix}"
        self._key = key
        self._transport = transport
        self._sleep = sleep
        self._service_client: Any = None
        self._service_key: str | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        arm_transport: HttpTransport[Any, Any] | None = None,
        transport: HttpTransport[Any, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AzureFilesWorkspaces:
        """The production wiring; `credential` and the transports (ARM for the key, Files for the
        shares) replace the identity and the network in tests."""
        assert settings.workspace_storage_account  # settings validate it for this backend
        if not (settings.azure_subscription_id and settings.azure_resource_group):
            raise PermanentBackendError(
                "DEV8_AZURE_SUBSCRIPTION_ID and DEV8_AZURE_RESOURCE_GROUP must be set for azurefiles "
                "(the workspace storage account's key is listed through ARM)"
            )
        key = account_key(
            credential or default_credential(settings.managed_identity_client_id),
            settings.azure_subscription_id,
            settings.azure_resource_group,
            settings.workspace_storage_account,
            transport=arm_transport,
        )
        return cls(key, transport=transport, sleep=sleep)

    # --- WorkspaceStorage -------------------------------------------------------------------------

    def ensure(self, name: str, quota_gb: int) -> Workspace:
        from azure.core.exceptions import ResourceExistsError

        share = self._share(name)
        with self._calls(f"creating file share {name}"):
            try:
                share.create_share(quota=quota_gb)
                return Workspace(name=name, location=name, quota_gb=quota_gb)
            except ResourceExistsError as error:
                if error_code(error) != "ShareAlreadyExists":
                    raise  # e.g. ShareBeingDeleted: transient, the activity is retried
        # Kept, files and all; a resize may have grown it since. The quota only ever grows:
        # Set Share Properties with x-ms-share-quota (learn.microsoft.com/rest/api/storageservices/
        # set-share-properties); a smaller quota asked for leaves it as it is.
        with self._calls(f"growing file share {name}"):
            if share.get_share_properties().quota < quota_gb:
                share.set_share_quota(quota_gb)
        return Workspace(name=name, location=name, quota_gb=quota_gb)

    def exists(self, name: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        with self._calls(f"reading file share {name}"):
            try:
                self._share(name).get_share_properties()
            except ResourceNotFoundError:
                return False
        return True

    def delete(self, name: str) -> None:
        """Delete the share and its snapshots (with share soft delete on, the account keeps both
        for its retention days: docs/runbook.md). Already gone is done."""
        from azure.core.exceptions import HttpResponseError

        with self._calls(f"deleting file share {name}"):
            try:
                self._share(name).delete_share(delete_snapshots="include")
            except HttpResponseError as error:
                if not is_not_found(error):
                    raise

    # --- snapshots (retention) --------------------------------------------------------------------

    def snapshot(self, name: str, metadata: dict[str, str] | None = None) -> str:
        with self._calls(f"snapshotting file share {name}"):
            result = self._share(name).create_snapshot(metadata=metadata or {"created-by": "dev8"})
        return str(result["snapshot"])

    def restore(self, name: str, snapshot: str, target: str, quota_gb: int) -> Workspace:
        """The WorkspaceStorage port: share `target` (created if absent) filled from the snapshot."""
        workspace = self.ensure(target, quota_gb)
        self.copy_snapshot(name, snapshot, target)
        return workspace

    def copy_snapshot(self, name: str, snapshot: str, target: str | None = None) -> int:
        """Copy a snapshot's files server-side into `target` (default: the share itself); files
        added since are kept. Returns how many files were copied."""
        destination = target or name
        with self._calls(f"restoring file share {destination} from {name}@{snapshot}"):
            return self._copy_tree(self._share(name, snapshot=snapshot), "", self._share(destination))

    def copy(self, name: str, folder: str, target: str, quota_gb: int) -> Workspace:
        """The WorkspaceStorage port: `folder` of share `name` copied server-side into `target`
        (a copy within one account is authorised by the destination's Shared Key: Copy File,
        learn.microsoft.com/rest/api/storageservices/copy-file)."""
        workspace = self.ensure(target, quota_gb)
        with self._calls(f"copying {name}/{folder} into file share {target}"):
            into = self._share(target)
            _create_directory(into, folder)
            self._copy_tree(self._share(name), folder, into)
        return workspace

    # --- the agent's mailbox ----------------------------------------------------------------------

    def write_file(self, name: str, path: str, data: bytes) -> None:
        parent = path.rpartition("/")[0]
        with self._calls(f"writing {path} in file share {name}"):
            share = self._share(name)
            if parent:
                _create_directory(share, parent)
            # One Put Range carries at most 4 MiB (put-range); the mailbox's files are tiny.
            share.get_file_client(path).upload_file(data)

    def read_file(self, name: str, path: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._calls(f"reading {path} in file share {name}"):
            try:
                return bytes(self._share(name).get_file_client(path).download_file().readall())
            except ResourceNotFoundError:  # the file, its directory or the share
                return None

    def delete_file(self, name: str, path: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._calls(f"deleting {path} in file share {name}"), contextlib.suppress(ResourceNotFoundError):
            self._share(name).get_file_client(path).delete_file()

    # --- internals --------------------------------------------------------------------------------

    def _copy_tree(self, source: Any, folder: str, into: Any) -> int:
        """Start a server-side copy of every file under `folder` of `source` into the same paths
        of `into`, directories first; returns once all finished, with how many were copied."""
        pending: list[Any] = []
        copied = 0
        for path, is_directory in _walk(source, folder):
            if is_directory:
                _create_directory(into, path)
                continue
            file_client = into.get_file_client(path)
            result = file_client.start_copy_from_url(source.get_file_client(path).url)
            copied += 1
            if result.get("copy_status") == "pending":
                pending.append(file_client)
        self._wait_for_copies(pending)
        return copied

    def _wait_for_copies(self, pending: list[Any]) -> None:
        waited = 0.0
        while pending:
            if waited >= COPY_WAIT_SECONDS:
                raise TransientBackendError(f"{len(pending)} file copies still pending after the restore")
            self._sleep(COPY_POLL_SECONDS)
            waited += COPY_POLL_SECONDS
            still = []
            for file_client in pending:
                status = file_client.get_file_properties().copy.status
                if status == "pending":
                    still.append(file_client)
                elif status != "success":
                    raise PermanentBackendError(f"copying {file_client.file_path} ended {status}")
            pending = still

    def _share(self, name: str, snapshot: str | None = None) -> Any:
        return self._service().get_share_client(name, snapshot=snapshot)

    def _service(self) -> Any:
        key = self._key.get()
        if self._service_client is None or self._service_key != key:
            from azure.storage.fileshare import ShareServiceClient

            options: dict[str, Any] = {"retry_policy": _retry_policy(self._sleep)}
            if self._transport is not None:
                options["transport"] = self._transport
            self._service_client = ShareServiceClient(
                self.account_url,
                credential={"account_name": self.account, "account_key": key},
                **options,
            )
            self._service_key = key
        return self._service_client

    @contextmanager
    def _calls(self, action: str) -> Iterator[None]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

        with azure_errors(action):
            try:
                yield
            except (ClientAuthenticationError, HttpResponseError) as error:
                if status_of(error) == 403 and error_code(error) == "AuthenticationFailed":
                    # The key was rotated: list it again on the next try.
                    self._key.forget()
                    raise TransientBackendError(f"{action}: the storage account key changed") from error
                raise


def _retry_policy(sleep: Callable[[float], None]) -> Any:
    """The Files SDK's ExponentialRetry, sleeping through `sleep`: its child clients (share,
    directory, file) wrap the transport in a way that sleeps with time.sleep, whatever the
    transport says, so the sleep is injected here instead (tests wait virtually)."""
    from azure.storage.fileshare import ExponentialRetry

    class _Retry(ExponentialRetry):
        def sleep(self, settings: Any, transport: Any) -> None:
            backoff = self.get_backoff_time(settings)
            if backoff and backoff > 0:
                sleep(backoff)

    return _Retry(**FILES_RETRY)


def _walk(share: Any, directory: str) -> Iterator[tuple[str, bool]]:
    """Every (path, is_directory) under `directory`, parents before their children."""
    for item in share.get_directory_client(directory).list_directories_and_files():
        path = f"{directory}/{item['name']}" if directory else str(item["name"])
        if item["is_directory"]:
            yield path, True
            yield from _walk(share, path)
        else:
            yield path, False


def _create_directory(share: Any, path: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):  # already there: restoring into a share that has it
        share.get_directory_client(path).create_directory()
