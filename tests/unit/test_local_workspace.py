"""LocalWorkspaceStorage: a directory per workspace, safe names, deletes that never follow links."""

from __future__ import annotations

import base64
import os
import shutil
import stat
from pathlib import Path

import pytest

from shared.adapters.workspaces.local import LocalWorkspaceStorage
from shared.domain.resources import workspace_name
from shared.errors import PermanentBackendError
from shared.services.ports import WorkspaceStorage
from shared.settings import load_settings

NAME = workspace_name("env-0123456789abcdef")


@pytest.fixture
def storage(tmp_path: Path) -> LocalWorkspaceStorage:
    return LocalWorkspaceStorage(tmp_path / "data")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the data dir that no workspace operation may touch."""
    precious = tmp_path / "outside"
    precious.mkdir()
    (precious / "keep.txt").write_text("precious")
    return precious


def test_is_a_workspace_storage(storage: LocalWorkspaceStorage) -> None:
    port: WorkspaceStorage = storage
    assert not port.exists(NAME)


def test_ensure_creates_a_directory(storage: LocalWorkspaceStorage, tmp_path: Path) -> None:
    workspace = storage.ensure(NAME, 50)
    expected = (tmp_path / "data" / "workspaces" / NAME).resolve()
    assert workspace.name == NAME
    assert workspace.quota_gb == 50
    assert Path(workspace.location) == expected
    assert expected.is_dir()
    assert storage.exists(NAME)


def test_ensure_keeps_existing_files(storage: LocalWorkspaceStorage) -> None:
    location = Path(storage.ensure(NAME, 20).location)
    (location / "project").mkdir()
    (location / "project" / "main.py").write_text("print('hi')")
    again = storage.ensure(NAME, 20)
    assert again.location == str(location)
    assert (location / "project" / "main.py").read_text() == "print('hi')"


def test_delete_removes_and_is_idempotent(storage: LocalWorkspaceStorage) -> None:
    location = Path(storage.ensure(NAME, 20).location)
    (location / "file.txt").write_text("x")
    storage.delete(NAME)
    assert not storage.exists(NAME)
    assert not location.exists()
    storage.delete(NAME)  # already gone is done
    storage.delete("ws-never-made")
    assert list((storage.root / ".deleting").iterdir()) == []


def test_delete_leaves_other_workspaces(storage: LocalWorkspaceStorage) -> None:
    storage.ensure(NAME, 20)
    storage.ensure(f"{NAME}-2", 20)
    storage.delete(NAME)
    assert storage.exists(f"{NAME}-2")


@pytest.mark.parametrize(
    "name",
    ["../escape", "..", "a/b", "ws/../../x", "WS-UPPER", "", "ws", "-ws-a", "ws-a-", "ws--a", "x" * 64,
     ".deleting", "ws-a\n", "ws a", "/abs/path"],
)  # fmt: skip
def test_invalid_names_are_refused(storage: LocalWorkspaceStorage, tmp_path: Path, name: str) -> None:
    with pytest.raises(PermanentBackendError, match="invalid workspace name"):
        storage.ensure(name, 20)
    with pytest.raises(PermanentBackendError):
        storage.exists(name)
    with pytest.raises(PermanentBackendError):
        storage.delete(name)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_symlinked_workspace_is_refused(storage: LocalWorkspaceStorage, outside: Path) -> None:
    storage.root.mkdir(parents=True)
    (storage.root / NAME).symlink_to(outside, target_is_directory=True)
    assert not storage.exists(NAME)
    with pytest.raises(PermanentBackendError, match="link"):
        storage.ensure(NAME, 20)
    with pytest.raises(PermanentBackendError, match="link"):
        storage.delete(NAME)
    assert (outside / "keep.txt").read_text() == "precious"


def test_delete_does_not_follow_links_inside(storage: LocalWorkspaceStorage, outside: Path) -> None:
    location = Path(storage.ensure(NAME, 20).location)
    (location / "to-outside").symlink_to(outside, target_is_directory=True)
    (location / "file-link").symlink_to(outside / "keep.txt")
    storage.delete(NAME)
    assert not location.exists()
    assert (outside / "keep.txt").read_text() == "precious"


def test_delete_copes_with_read_only_directories(storage: LocalWorkspaceStorage) -> None:
    location = Path(storage.ensure(NAME, 20).location)
    locked = location / "locked"
    (locked / "deeper").mkdir(parents=True)
    (locked / "deeper" / "file.txt").write_text("x")
    os.chmod(locked / "deeper", stat.S_IRUSR | stat.S_IXUSR)
    os.chmod(locked, 0)
    storage.delete(NAME)
    assert not location.exists()


def test_delete_finishes_an_interrupted_delete(storage: LocalWorkspaceStorage) -> None:
    leftover = storage.root / ".deleting" / f"{NAME}.0f0f"
    (leftover / "sub").mkdir(parents=True)
    neighbour = storage.root / ".deleting" / f"{NAME}-2.0f0f"
    neighbour.mkdir()
    storage.delete(NAME)
    assert not leftover.exists()
    assert neighbour.exists()  # another workspace's remains are not this delete's business


def test_file_in_place_of_a_workspace_is_refused(storage: LocalWorkspaceStorage) -> None:
    storage.root.mkdir(parents=True)
    (storage.root / NAME).write_text("not a directory")
    with pytest.raises(PermanentBackendError, match="not a directory"):
        storage.ensure(NAME, 20)
    assert not storage.exists(NAME)


def test_relative_data_dir_is_fixed_at_construction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = LocalWorkspaceStorage(".dev8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert Path(storage.ensure(NAME, 20).location) == (tmp_path / ".dev8" / "workspaces" / NAME).resolve()


def test_from_settings_uses_the_local_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("DEV8_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEV8_JWT_SECRET", "s" * 32)
    monkeypatch.setenv("DEV8_TABLES_CONNECTION", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DEV8_SECRETS_KEY", base64.b64encode(bytes(32)).decode())
    monkeypatch.setenv("DEV8_LOCAL_DATA_DIR", str(tmp_path / "custom"))
    storage = LocalWorkspaceStorage.from_settings(load_settings())
    assert storage.ensure(NAME, 20).location == str((tmp_path / "custom" / "workspaces" / NAME).resolve())


def test_permission_error_opens_up_directories_and_retries(
    storage: LocalWorkspaceStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root ignores modes, so the first failure is forced; the retry must see opened-up directories.
    location = Path(storage.ensure(NAME, 20).location)
    (location / "locked" / "deeper").mkdir(parents=True)
    os.chmod(location / "locked" / "deeper", 0)
    os.chmod(location / "locked", 0)
    real_rmtree = shutil.rmtree
    seen_modes: list[int] = []

    def flaky_rmtree(path: Path) -> None:
        if not seen_modes:
            seen_modes.append(-1)
            raise PermissionError(13, "Permission denied")
        seen_modes.extend(
            stat.S_IMODE(p.stat().st_mode) for p in (path / "locked", path / "locked" / "deeper")
        )
        real_rmtree(path)

    monkeypatch.setattr(shutil, "rmtree", flaky_rmtree)
    storage.delete(NAME)
    assert seen_modes == [-1, stat.S_IRWXU, stat.S_IRWXU]
    assert not location.exists()


def test_snapshot_restore_and_delete_with_snapshots(tmp_path):
    storage = LocalWorkspaceStorage(tmp_path)
    workspace = Path(storage.ensure("ws-one", 10).location)
    (workspace / "src").mkdir()
    (workspace / "src" / "main.py").write_text("print('v1')")
    (workspace / "link").symlink_to("/etc/hostname")
    snapshot = storage.snapshot("ws-one")
    (workspace / "src" / "main.py").write_text("print('v2')")

    restored = Path(storage.restore("ws-one", snapshot, "ws-two", 10).location)
    assert (restored / "src" / "main.py").read_text() == "print('v1')"
    assert (restored / "link").is_symlink()  # copied as a link, never followed
    (restored / "new.txt").write_text("mine")
    storage.restore("ws-one", snapshot, "ws-two", 10)  # again: nothing is overwritten
    assert (restored / "new.txt").read_text() == "mine"

    with pytest.raises(PermanentBackendError, match="no snapshot"):
        storage.restore("ws-one", "../../etc", "ws-three", 10)
    storage.delete("ws-one")
    assert not storage.exists("ws-one") and not (tmp_path / "snapshots" / "ws-one").exists()
    with pytest.raises(PermanentBackendError, match="no snapshot"):
        storage.restore("ws-one", snapshot, "ws-four", 10)
    assert storage.exists("ws-two")


def test_snapshot_of_a_missing_workspace_is_permanent(tmp_path):
    with pytest.raises(PermanentBackendError, match="does not exist"):
        LocalWorkspaceStorage(tmp_path).snapshot("ws-none")
