"""Local workspace storage: one directory per workspace under `{DEV8_LOCAL_DATA_DIR}/workspaces/`.

Names mirror Azure Files share rules, which also rules out path traversal. Delete first renames the
directory out of the way (so the name is gone at once, even if removal is interrupted), then removes
it without following symlinks; a later delete finishes what an interrupted one left.
The quota is recorded on the returned `Workspace` but not enforced on a local disk.
Snapshots are read-only copies under `{DEV8_LOCAL_DATA_DIR}/snapshots/{name}/{id}`, ids being
UTC timestamps like Azure Files share snapshots; deleting a workspace deletes its snapshots.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import PermanentBackendError, TransientBackendError
from shared.services.ports import Workspace
from shared.settings import Settings

# Like an Azure Files share: 3-63 of [a-z0-9-], alphanumeric at both ends, no "--".
_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_TRASH = ".deleting"  # cannot clash with a valid name (it starts with a dot)


class LocalWorkspaceStorage:
    """A `WorkspaceStorage` of plain directories, for the local host and tests."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        # Resolved once, so a later change of working directory cannot move the workspaces.
        self.root = Path(data_dir).resolve() / "workspaces"
        self.snapshots = self.root.parent / "snapshots"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalWorkspaceStorage:
        return cls(settings.local_data_dir)

    def ensure(self, name: str, quota_gb: int) -> Workspace:
        path = self._path(name)
        try:
            path.mkdir(parents=True, exist_ok=True)  # existing files are kept
        except FileExistsError:
            raise PermanentBackendError(f"workspace {name} exists but is not a directory") from None
        except OSError as exc:
            raise TransientBackendError(f"workspace {name} cannot be created: {exc.strerror}") from None
        self._refuse_link(path, name)
        return Workspace(name=name, location=str(path), quota_gb=quota_gb)

    def exists(self, name: str) -> bool:
        path = self._path(name)
        return path.is_dir() and not path.is_symlink()

    def delete(self, name: str) -> None:
        path = self._path(name)
        trash = self.root / _TRASH
        if path.is_symlink():
            raise PermanentBackendError(f"workspace {name} is a link, not a directory; refusing")
        if path.exists():
            trash.mkdir(parents=True, exist_ok=True)
            try:
                path.rename(trash / f"{name}.{uuid.uuid4().hex}")
            except FileNotFoundError:
                pass  # a concurrent delete got there first
            except OSError as exc:
                raise TransientBackendError(f"workspace {name} cannot be deleted: {exc.strerror}") from None
        # Also any remains of an earlier, interrupted delete of the same name.
        for leftover in trash.glob(f"{name}.*") if trash.is_dir() else ():
            _remove_tree(leftover, name)
        _remove_tree(self.snapshots / name, name)

    def snapshot(self, name: str) -> str:
        path = self._path(name)
        if not path.is_dir() or path.is_symlink():
            raise PermanentBackendError(f"workspace {name} does not exist; nothing to snapshot")
        snapshot_id = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        target = self.snapshots / name / snapshot_id
        _copy_atomically(path, target, name)
        return snapshot_id

    def restore(self, name: str, snapshot: str, target: str, quota_gb: int) -> Workspace:
        destination = self._path(target)
        self._path(name)
        source = self.snapshots / name / snapshot
        if "/" in snapshot or snapshot.startswith(".") or not source.is_dir():
            raise PermanentBackendError(f"workspace {name} has no snapshot {snapshot!r}")
        if not destination.exists():  # already restored: keep what is there
            _copy_atomically(source, destination, target)
        return self.ensure(target, quota_gb)

    def copy(self, name: str, folder: str, target: str, quota_gb: int) -> Workspace:
        source = self._inside(self._path(name), folder)
        workspace = self.ensure(target, quota_gb)
        destination = self._inside(self._path(target), folder)
        if source.is_dir() and not source.is_symlink():
            try:
                shutil.copytree(source, destination, symlinks=True, dirs_exist_ok=True)
            except OSError as exc:
                raise TransientBackendError(f"workspace {target} cannot be filled: {exc}") from None
        return workspace

    # --- the agent's mailbox: written under a temporary name, then renamed (never read half-written)

    def write_file(self, name: str, path: str, data: bytes) -> None:
        file = self._inside(self._path(name), path)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            staging = file.parent / f".{file.name}.{uuid.uuid4().hex}"
            staging.write_bytes(data)
            staging.rename(file)
        except OSError as exc:
            raise TransientBackendError(f"workspace {name}: cannot write {path}: {exc.strerror}") from None

    def read_file(self, name: str, path: str) -> bytes | None:
        file = self._inside(self._path(name), path)
        try:
            return None if file.is_symlink() else file.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise TransientBackendError(f"workspace {name}: cannot read {path}: {exc.strerror}") from None

    def delete_file(self, name: str, path: str) -> None:
        file = self._inside(self._path(name), path)
        try:
            file.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise TransientBackendError(f"workspace {name}: cannot delete {path}: {exc.strerror}") from None

    @staticmethod
    def _inside(root: Path, path: str) -> Path:
        """`path` under `root`: relative, made of plain names (no `..`, no absolute path)."""
        parts = path.split("/")
        if not path or any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise PermanentBackendError(f"invalid path in a workspace: {path!r}")
        return root.joinpath(*parts)

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise PermanentBackendError(f"invalid workspace name {name!r}: use 3-63 of [a-z0-9-]")
        return self.root / name

    def _refuse_link(self, path: Path, name: str) -> None:
        # A symlink in place of a workspace was not made by us and could lead outside the data dir.
        if path.is_symlink() or path.resolve().parent != self.root.resolve():
            raise PermanentBackendError(f"workspace {name} is a link out of the data directory; refusing")


def _copy_atomically(source: Path, target: Path, name: str) -> None:
    """Copy a tree (links copied as links) under a temporary name, then rename it into place."""
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, staging, symlinks=True)
        staging.rename(target)
    except OSError as exc:
        _remove_tree(staging, name)
        raise TransientBackendError(f"workspace {name} cannot be copied: {exc.strerror}") from None


def _remove_tree(path: Path, name: str) -> None:
    try:
        # rmtree never follows symlinks inside the tree: a link to elsewhere is removed, not its target.
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except PermissionError:
        # A user may have made directories read-only (or unreadable): open them up and go again.
        _open_up(path)
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TransientBackendError(f"workspace {name} cannot be deleted: {exc.strerror}") from None
    except OSError as exc:
        raise TransientBackendError(f"workspace {name} cannot be deleted: {exc.strerror}") from None


def _open_up(root: Path) -> None:
    """Give the owner rwx on every directory of the tree, never through a symlink."""
    os.chmod(root, stat.S_IRWXU)
    for current, directories, _files in os.walk(root):  # topdown: children opened before descent
        for directory in directories:
            child = os.path.join(current, directory)
            if not os.path.islink(child):
                os.chmod(child, stat.S_IRWXU)
