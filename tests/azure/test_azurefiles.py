"""The `azurefiles` workspace backend over the Azure Files simulator."""

from __future__ import annotations

import pytest

from shared.adapters.workspaces.azurefiles import AzureFilesWorkspaces
from shared.errors import PermanentBackendError, TransientBackendError
from tests.azure.sim_arm import STORAGE_KEY, ArmSimulator
from tests.azure.sim_files import FilesSimulator


def test_ensure_creates_the_share_with_its_quota_once(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    workspace = workspaces.ensure("ws-1a2b3c4d", 50)
    assert (workspace.name, workspace.location, workspace.quota_gb) == ("ws-1a2b3c4d", "ws-1a2b3c4d", 50)
    assert files.shares["ws-1a2b3c4d"].quota == 50
    (create,) = files.of("PUT", "/ws-1a2b3c4d")
    assert create.query == {"restype": "share"}
    assert {k.lower(): v for k, v in create.headers.items()}["x-ms-share-quota"] == "50"
    files.write("ws-1a2b3c4d", "notes.txt", b"keep me")
    workspaces.ensure("ws-1a2b3c4d", 50)  # 409 ShareAlreadyExists: done, files kept
    assert [r.status for r in files.of("PUT", "/ws-1a2b3c4d")] == [201, 409]
    assert files.shares["ws-1a2b3c4d"].tree.files == {"notes.txt": b"keep me"}


def test_ensure_grows_a_kept_share_and_never_shrinks_it(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    workspaces.ensure("ws-grow", 50)
    files.write("ws-grow", "notes.txt", b"keep me")
    workspaces.ensure("ws-grow", 100)  # a resize: Set Share Properties with the new quota
    assert files.shares["ws-grow"].quota == 100
    (grow,) = [r for r in files.of("PUT", "/ws-grow") if r.query.get("comp") == "properties"]
    assert grow.query == {"restype": "share", "comp": "properties"}
    assert {k.lower(): v for k, v in grow.headers.items()}["x-ms-share-quota"] == "100"
    workspaces.ensure("ws-grow", 50)  # never shrunk: nothing set
    workspaces.ensure("ws-grow", 100)  # already that size: nothing set
    assert files.shares["ws-grow"].quota == 100
    assert len([r for r in files.of("PUT", "/ws-grow") if r.query.get("comp") == "properties"]) == 1
    assert files.shares["ws-grow"].tree.files == {"notes.txt": b"keep me"}
    # Past the largest share Azure Files allows: refused as Azure refuses it, the share unchanged.
    with pytest.raises(PermanentBackendError):
        workspaces.ensure("ws-grow", 200_000)
    assert files.shares["ws-grow"].quota == 100


def test_requests_are_signed_with_the_key_listed_through_arm(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator, arm: ArmSimulator
) -> None:
    workspaces.ensure("ws-a", 10)
    workspaces.exists("ws-a")
    assert len(arm.of("POST", "/listKeys")) == 1  # listed once, kept in memory
    # The simulator's recorder strips Authorization; the SDK signed with SharedKey (not a token).
    assert all("x-ms-date" in {k.lower() for k in r.headers} for r in files.requests)
    assert STORAGE_KEY not in str([r.url for r in files.requests])


def test_exists(workspaces: AzureFilesWorkspaces) -> None:
    assert not workspaces.exists("ws-a")
    workspaces.ensure("ws-a", 10)
    assert workspaces.exists("ws-a")


def test_delete_takes_the_snapshots_along_and_404_is_done(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    workspaces.ensure("ws-a", 10)
    workspaces.snapshot("ws-a")
    workspaces.delete("ws-a")
    assert "ws-a" not in files.shares
    (delete, *_) = files.of("DELETE", "/ws-a")
    assert {k.lower(): v for k, v in delete.headers.items()}["x-ms-delete-snapshots"] == "include"
    workspaces.delete("ws-a")  # 404 ShareNotFound
    assert [r.status for r in files.of("DELETE", "/ws-a")] == [202, 404]


def test_share_being_deleted_is_transient(workspaces: AzureFilesWorkspaces, files: FilesSimulator) -> None:
    files.fail_next("PUT", "/ws-a", 409, "ShareBeingDeleted", times=1)
    with pytest.raises(TransientBackendError, match="ShareBeingDeleted"):
        workspaces.ensure("ws-a", 10)
    assert workspaces.ensure("ws-a", 10).name == "ws-a"


def test_snapshot_and_restore_in_place(workspaces: AzureFilesWorkspaces, files: FilesSimulator) -> None:
    workspaces.ensure("ws-a", 10)
    files.write("ws-a", "project/src/main.py", b"print('v1')")
    files.write("ws-a", "README.md", b"# v1")
    snapshot = workspaces.snapshot("ws-a")
    assert snapshot in files.shares["ws-a"].snapshots
    files.write("ws-a", "project/src/main.py", b"print('broken')")
    files.write("ws-a", "scratch.txt", b"newer work")
    assert workspaces.copy_snapshot("ws-a", snapshot) == 2
    tree = files.shares["ws-a"].tree
    assert tree.files["project/src/main.py"] == b"print('v1')"
    assert tree.files["scratch.txt"] == b"newer work"  # a restore never deletes work


def test_restore_into_another_share_creates_directories(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    workspaces.ensure("ws-old", 10)
    files.write("ws-old", "a/b/c/deep.txt", b"deep")
    snapshot = workspaces.snapshot("ws-old")
    restored = workspaces.restore("ws-old", snapshot, "ws-new", 10)  # the port: creates ws-new
    assert (restored.name, restored.quota_gb) == ("ws-new", 10)
    assert files.shares["ws-new"].tree.files == {"a/b/c/deep.txt": b"deep"}
    assert {"a", "a/b", "a/b/c"} <= files.shares["ws-new"].tree.dirs
    copy = files.of("PUT", "/ws-new/a/b/c/deep.txt")[0]
    source = {k.lower(): v for k, v in copy.headers.items()}["x-ms-copy-source"]
    assert f"sharesnapshot={snapshot}".replace(":", "%3A") in source or f"sharesnapshot={snapshot}" in source


def test_restore_waits_for_pending_copies(workspaces: AzureFilesWorkspaces, files: FilesSimulator) -> None:
    workspaces.ensure("ws-a", 10)
    files.write("ws-a", "big.bin", b"x" * 100)
    snapshot = workspaces.snapshot("ws-a")
    files.copy_status, files.pending_polls = "pending", 2
    assert workspaces.copy_snapshot("ws-a", snapshot) == 1
    assert len([r for r in files.requests if r.method == "HEAD" and r.path.endswith("big.bin")]) == 3
    assert files.sleeps.count(2.0) >= 2  # waited (virtually) between property reads


def test_restore_of_an_unknown_snapshot_is_permanent(workspaces: AzureFilesWorkspaces) -> None:
    workspaces.ensure("ws-a", 10)
    with pytest.raises(PermanentBackendError):
        workspaces.copy_snapshot("ws-a", "2020-01-01T00:00:00.0000000Z")


def test_a_rotated_key_is_listed_again(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator, arm: ArmSimulator
) -> None:
    workspaces.ensure("ws-a", 10)
    files.fail_next("HEAD", "/ws-a", 403, "AuthenticationFailed", times=1)
    files.fail_next("GET", "/ws-a", 403, "AuthenticationFailed", times=1)
    with pytest.raises(TransientBackendError, match="key changed"):
        workspaces.exists("ws-a")
    assert workspaces.exists("ws-a")
    assert len(arm.of("POST", "/listKeys")) == 2


# --- the snapshot agent's mailbox and the repository copy (issue 11) ---------------------------------


def test_the_mailbox_is_written_read_and_withdrawn_on_the_share(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    from shared.adapters.workspaces.mailbox import Mailbox
    from shared.domain.snapshots import Reason

    mailbox = Mailbox(workspaces)
    env_id = "env-00000000000000aa"
    workspaces.ensure("ws-00000000000000aa", 10)
    assert mailbox.answer(env_id, "stop-1") is None  # no control folder yet: not answered
    mailbox.ask(env_id, "stop-1", Reason.STOP)
    mailbox.ask(env_id, "stop-1", Reason.STOP)  # again: the same one request
    assert files.shares["ws-00000000000000aa"].tree.files == {"control/stop-1.request": b"stop"}
    assert mailbox.answer(env_id, "stop-1") is None
    # The agent in the container answers on the share it has mounted.
    answer = (
        b'{"event":"snapshot","id":"0123abcd","taken_at":"2026-12-02T09:00:00Z","reason":"stop",'
        b'"files":3,"bytes_added":42}\n'
    )
    files.write("ws-00000000000000aa", "control/stop-1.answer", answer)
    event = mailbox.answer(env_id, "stop-1")
    assert event is not None and (event.event, event.id, event.files) == ("snapshot", "0123abcd", 3)
    files.write("ws-00000000000000aa", "control/junk.answer", b"not json")
    assert mailbox.answer(env_id, "junk").event == "failed"  # an answer, but unreadable
    mailbox.withdraw(env_id, "stop-1")
    mailbox.withdraw(env_id, "stop-1")  # already gone is done
    assert set(files.shares["ws-00000000000000aa"].tree.files) == {"control/junk.answer"}
    assert mailbox.answer("env-00000000000000bb", "stop-1") is None  # no such share


def test_files_larger_than_one_range_round_trip(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    workspaces.ensure("ws-a", 10)
    data = bytes(range(256)) * (9 * 4096 + 7)  # over 9 MiB: three Put Range calls of at most 4 MiB
    workspaces.write_file("ws-a", "control/big.bin", data)
    assert workspaces.read_file("ws-a", "control/big.bin") == data
    ranges = [r for r in files.of("PUT", "/ws-a/control/big.bin") if r.query.get("comp") == "range"]
    assert len(ranges) >= 3 and all(r.status == 201 for r in ranges)
    workspaces.write_file("ws-a", "control/empty", b"")
    assert workspaces.read_file("ws-a", "control/empty") == b""  # 416 on a range of nothing, then a plain GET


def test_a_repository_folder_is_copied_server_side_into_a_new_share(
    workspaces: AzureFilesWorkspaces, files: FilesSimulator
) -> None:
    workspaces.ensure("ws-old", 10)
    files.write("ws-old", "snapshots/config", b"restic config")
    files.write("ws-old", "snapshots/data/ab/abcdef", b"pack")
    files.write("ws-old", ".dev8/ssh/host_key", b"not copied")
    copied = workspaces.copy("ws-old", "snapshots", "ws-new", 20)
    assert (copied.name, copied.quota_gb) == ("ws-new", 20)
    assert files.shares["ws-new"].tree.files == {
        "snapshots/config": b"restic config",
        "snapshots/data/ab/abcdef": b"pack",
    }
    workspaces.copy("ws-old", "snapshots", "ws-new", 20)  # again (a re-run activity): the same files
    assert len(files.shares["ws-new"].tree.files) == 2
