"""The Azure Files data plane, as far as Dev8 uses it, behind an azure-core transport.

Shares: create (201, x-ms-share-quota honoured; 409 ShareAlreadyExists), properties (200 / 404
ShareNotFound), set properties (the quota, checked as at create), snapshot (201 with
x-ms-snapshot), delete (202; 404 ShareNotFound; 409 ShareHasSnapshots unless
x-ms-delete-snapshots: include). Directories: create (201 / 409
ResourceAlreadyExists) and list (the EnumerationResults XML, of a share or of a snapshot). Files:
server-side copy (x-ms-copy-source, from the share or a snapshot of it in the same account;
`copy_status` says whether the copy reports success at once or stays pending for `pending_polls`
property reads); create (x-ms-type: file with x-ms-content-length: a file of that many zero
bytes, 404 ParentNotFound without its directory), Put Range (at most 4 MiB, inside the file: 416
InvalidRange otherwise), Get File (a range: 206 with Content-Range; a range on an empty file: 416,
as the service answers) and Delete File (202 / 404 ResourceNotFound). Limits are cited in
tests/azure/azure_rules.py and the REST pages named there.

Every request must be signed (SharedKey) with the account's current key, checked the way the
service does it, by signing the request again: after `rotate_key` the old key gets 403
AuthenticationFailed. Share names, quotas and the number of snapshots per share follow Azure's
documented limits (tests/azure/azure_rules.py).

Errors carry x-ms-error-code and the XML error body, which the storage SDK turns into
ResourceExistsError / ResourceNotFoundError / ClientAuthenticationError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from tests.azure.azure_rules import SHARE_NAME_RULE, SHARE_QUOTA_RULE, SNAPSHOT_RULE, Rule
from tests.azure.sim_arm import STORAGE_KEY
from tests.azure.sim_base import Recorded, Reply, SimTransport

ETAG = '"0x8DCSIMULATED"'
LAST_MODIFIED = "Sat, 21 Nov 2026 09:00:00 GMT"


@dataclass
class Tree:
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)


@dataclass
class Share:
    quota: int
    tree: Tree = field(default_factory=Tree)
    snapshots: dict[str, Tree] = field(default_factory=dict)


class FilesSimulator(SimTransport):
    def __init__(self, account: str, *, seed: int = 0, clock: Any = None, key: str = STORAGE_KEY) -> None:
        super().__init__(seed=seed, clock=clock)
        self.account = account
        self.key = key
        self.refused: list[tuple[str, str]] = []  # (rule, share) of every request refused by a limit
        self.shares: dict[str, Share] = {}
        self.deleted: list[str] = []
        self.copy_status = "success"
        self.pending_polls = 1
        self._pending: dict[tuple[str, str], int] = {}
        self._snapshots_made = 0

    def rotate_key(self, new_key: str) -> None:
        self.key = new_key

    def authorize(self, request: Any) -> Reply | None:
        from azure.storage.fileshare._shared.authentication import SharedKeyCredentialPolicy

        sent = request.headers.get("Authorization", "")
        copy = SimpleNamespace(
            method=request.method, url=request.url, query=request.query, headers=dict(request.headers)
        )
        SharedKeyCredentialPolicy(self.account, self.key).on_request(
            SimpleNamespace(http_request=copy, context=SimpleNamespace(transport=None))
        )
        if sent != copy.headers["Authorization"]:
            return _error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization "
                "header is formed correctly including the signature.",
            )
        return None

    def _refuse(self, rule: Rule, share: str, message: str) -> Reply:
        self.refused.append((rule.name, share))
        return _error(rule.status, rule.code, message)

    # --- routing ----------------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Reply:
        segments = [unquote(p) for p in request.path.split("/") if p]
        if not segments:
            return _error(400, "InvalidUri", "no share")
        share_name, path = segments[0], "/".join(segments[1:])
        restype = request.query.get("restype")
        comp = request.query.get("comp")
        snapshot = request.query.get("sharesnapshot")
        if restype == "share":
            return self._share_op(request, share_name, comp, snapshot)
        share = self.shares.get(share_name)
        if share is None:
            return _error(404, "ShareNotFound", "The specified share does not exist.")
        tree = share.tree if snapshot is None else share.snapshots.get(snapshot)
        if tree is None:
            return _error(404, "ShareSnapshotNotFound", "The specified share snapshot does not exist.")
        if restype == "directory":
            if comp == "list" and request.method == "GET":
                return self._list(share_name, tree, path, snapshot)
            if request.method == "PUT" and comp is None:
                if path in tree.dirs:
                    return _error(409, "ResourceAlreadyExists", "The specified resource already exists.")
                tree.dirs.add(path)
                return Reply(201, None, _props())
        elif request.method == "PUT" and "x-ms-copy-source" in _lower(request.headers):
            return self._copy(tree, path, _lower(request.headers)["x-ms-copy-source"])
        elif request.method == "PUT" and comp is None and _lower(request.headers).get("x-ms-type") == "file":
            return self._create_file(tree, path, _lower(request.headers))
        elif request.method == "PUT" and comp == "range":
            return self._put_range(tree, path, _lower(request.headers), request.raw)
        elif request.method == "GET" and comp is None:
            return self._get_file(tree, path, _lower(request.headers))
        elif request.method == "HEAD" and comp is None:
            return self._file_properties(share_name, tree, path)
        elif request.method == "DELETE" and comp is None:
            if path not in tree.files:
                return _error(404, "ResourceNotFound", "The specified resource does not exist.")
            del tree.files[path]
            return Reply(202, None, _props())
        return _error(400, "UnsupportedBySimulator", f"{request.method} {request.path}")

    def _share_op(self, request: Recorded, name: str, comp: str | None, snapshot: str | None) -> Reply:
        share = self.shares.get(name)
        headers = _lower(request.headers)
        if request.method == "PUT" and comp is None:
            quota = int(headers.get("x-ms-share-quota", "5120"))
            for rule in (SHARE_NAME_RULE, SHARE_QUOTA_RULE):
                message = rule.check(name, quota)
                if message is not None:
                    return self._refuse(rule, name, message)
            if share is not None:
                return _error(409, "ShareAlreadyExists", "The specified share already exists.")
            self.shares[name] = Share(quota=quota)
            return Reply(201, None, _props())
        if share is None:
            return _error(404, "ShareNotFound", "The specified share does not exist.")
        if request.method == "PUT" and comp == "snapshot":
            message = SNAPSHOT_RULE.check(len(share.snapshots))
            if message is not None:
                return self._refuse(SNAPSHOT_RULE, name, message)
            self._snapshots_made += 1
            n = self._snapshots_made
            snapshot_id = f"2026-11-21T{9 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.0000000Z"
            share.snapshots[snapshot_id] = Tree(dict(share.tree.files), set(share.tree.dirs))
            return Reply(201, None, {**_props(), "x-ms-snapshot": snapshot_id})
        if request.method == "PUT" and comp == "properties":  # Set Share Properties
            quota_header = headers.get("x-ms-share-quota")
            if quota_header is not None:
                quota = int(quota_header)
                message = SHARE_QUOTA_RULE.check(name, quota)
                if message is not None:
                    return self._refuse(SHARE_QUOTA_RULE, name, message)
                share.quota = quota
            return Reply(200, None, _props())
        if request.method in ("GET", "HEAD") and comp is None:
            if snapshot is not None and snapshot not in share.snapshots:
                return _error(404, "ShareSnapshotNotFound", "The specified share snapshot does not exist.")
            return Reply(200, None, {**_props(), "x-ms-share-quota": str(share.quota)})
        if request.method == "DELETE":
            if snapshot is not None:
                share.snapshots.pop(snapshot, None)
                return Reply(202)
            if share.snapshots and headers.get("x-ms-delete-snapshots") not in ("include", "include-leased"):
                return _error(
                    409,
                    "ShareHasSnapshots",
                    "The share has snapshots and the operation requires no snapshots.",
                )
            del self.shares[name]
            self.deleted.append(name)
            return Reply(202)
        return _error(400, "UnsupportedBySimulator", f"{request.method} share comp={comp}")

    # --- directories and files --------------------------------------------------------------------

    def _list(self, share: str, tree: Tree, path: str, snapshot: str | None) -> Reply:
        prefix = f"{path}/" if path else ""
        if path and path not in tree.dirs:
            return _error(404, "ParentNotFound", "The specified parent path does not exist.")
        dirs = sorted(
            {d[len(prefix) :] for d in tree.dirs if d.startswith(prefix) and "/" not in d[len(prefix) :]}
        )
        files = sorted(
            (f[len(prefix) :], len(data))
            for f, data in tree.files.items()
            if f.startswith(prefix) and "/" not in f[len(prefix) :]
        )
        entries = "".join(f"<Directory><Name>{escape(d)}</Name><Properties /></Directory>" for d in dirs)
        entries += "".join(
            f"<File><Name>{escape(f)}</Name><Properties><Content-Length>{size}</Content-Length></Properties></File>"
            for f, size in files
        )
        snapshot_attr = f' ShareSnapshot="{snapshot}"' if snapshot else ""
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="https://{self.account}.file.core.windows.net/" '
            f'ShareName="{escape(share)}"{snapshot_attr} DirectoryPath="{escape(path)}">'
            f"<Entries>{entries}</Entries><NextMarker /></EnumerationResults>"
        )
        return Reply(200, xml, {"Content-Type": "application/xml"})

    def _copy(self, tree: Tree, path: str, source_url: str) -> Reply:
        source = urlsplit(source_url)
        segments = [unquote(p) for p in source.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(source.query).items()}
        share = self.shares.get(segments[0])
        if share is None:
            return _error(404, "CannotVerifyCopySource", "The copy source share does not exist.")
        source_tree = (
            share.tree if "sharesnapshot" not in query else share.snapshots.get(query["sharesnapshot"])
        )
        source_path = "/".join(segments[1:])
        if source_tree is None or source_path not in source_tree.files:
            return _error(404, "CannotVerifyCopySource", "The copy source does not exist.")
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent and parent not in tree.dirs:
            return _error(404, "ParentNotFound", "The specified parent path does not exist.")
        tree.files[path] = source_tree.files[source_path]
        if self.copy_status == "pending":
            self._pending[(id(tree), path)] = self.pending_polls
        return Reply(
            202, None, {**_props(), "x-ms-copy-id": "sim-copy", "x-ms-copy-status": self.copy_status}
        )

    def _create_file(self, tree: Tree, path: str, headers: dict[str, str]) -> Reply:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent and parent not in tree.dirs:
            return _error(404, "ParentNotFound", "The specified parent path does not exist.")
        size = int(headers.get("x-ms-content-length", "-1"))
        if not 0 <= size <= MAX_FILE_BYTES:
            return _error(
                400,
                "InvalidHeaderValue",
                "The value for one of the HTTP headers is not in the correct format.",
            )
        tree.files[path] = bytes(size)  # Create File makes (or resets) a file of zeros
        return Reply(201, None, _props())

    def _put_range(self, tree: Tree, path: str, headers: dict[str, str], data: bytes) -> Reply:
        if path not in tree.files:
            return _error(404, "ResourceNotFound", "The specified resource does not exist.")
        start, end = _range(headers.get("x-ms-range") or headers.get("range") or "")
        current = tree.files[path]
        if start is None or end is None or end < start or end >= len(current):
            return _error(
                416, "InvalidRange", "The range specified is invalid for the current size of the resource."
            )
        if end - start + 1 > MAX_RANGE_BYTES:
            return _error(
                413,
                "RequestBodyTooLarge",
                "The request body is too large and exceeds the maximum permissible limit.",
            )
        if headers.get("x-ms-write", "update") == "clear":
            data = bytes(end - start + 1)
        elif len(data) != end - start + 1:
            return _error(400, "InvalidHeaderValue", "Content-Length does not match the range.")
        tree.files[path] = current[:start] + data + current[end + 1 :]
        return Reply(201, None, _props())

    def _get_file(self, tree: Tree, path: str, headers: dict[str, str]) -> Reply:
        if path not in tree.files:
            return _error(404, "ResourceNotFound", "The specified resource does not exist.")
        data = tree.files[path]
        wanted = headers.get("x-ms-range") or headers.get("range")
        base = {**_props(), "x-ms-type": "File", "Content-Type": "application/octet-stream"}
        if not wanted:
            return Reply(200, data, {**base, "Content-Length": str(len(data))})
        start, end = _range(wanted)
        if start is None or start >= len(data):
            return _error(
                416, "InvalidRange", "The range specified is invalid for the current size of the resource."
            )
        end = min(end if end is not None else len(data) - 1, len(data) - 1)
        part = data[start : end + 1]
        return Reply(
            206,
            part,
            {**base, "Content-Length": str(len(part)), "Content-Range": f"bytes {start}-{end}/{len(data)}"},
        )

    def _file_properties(self, share: str, tree: Tree, path: str) -> Reply:
        if path not in tree.files:
            return _error(404, "ResourceNotFound", "The specified resource does not exist.")
        status = "success"
        key = (id(tree), path)
        if key in self._pending:
            if self._pending[key] > 0:
                self._pending[key] -= 1
                status = "pending"
            else:
                del self._pending[key]
        headers = {
            **_props(),
            "x-ms-type": "File",
            "Content-Length": str(len(tree.files[path])),
            "x-ms-copy-id": "sim-copy",
            "x-ms-copy-status": status,
        }
        return Reply(200, None, headers)

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        if status == 503:
            code = "ServerBusy"  # how Azure Storage throttles
        return _error(status, code, message)

    # --- test helpers -----------------------------------------------------------------------------

    def write(self, share: str, path: str, data: bytes) -> None:
        """Put a file in a share (as if the workspace container wrote it), parents included."""
        tree = self.shares[share].tree
        parts = path.split("/")
        for depth in range(1, len(parts)):
            tree.dirs.add("/".join(parts[:depth]))
        tree.files[path] = data


# Put Range writes at most 4 MiB (learn.microsoft.com/rest/api/storageservices/put-range); a file is
# at most 4 TiB (azure/storage/files/storage-files-scale-targets, "File scale targets").
MAX_RANGE_BYTES = 4 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024**4


def _range(header: str) -> tuple[int | None, int | None]:
    """`bytes=START-END` (END optional) as numbers; (None, None) when it does not parse."""
    unit, _, span = header.partition("=")
    first, _, last = span.partition("-")
    if (
        unit.strip() != "bytes"
        or not first.strip().isdigit()
        or (last.strip() and not last.strip().isdigit())
    ):
        return None, None
    return int(first), int(last) if last.strip() else None


def _props() -> dict[str, str]:
    return {"ETag": ETAG, "Last-Modified": LAST_MODIFIED, "x-ms-version": "2025-11-05"}


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _error(status: int, code: str, message: str) -> Reply:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Reply(status, xml, {"x-ms-error-code": code, "Content-Type": "application/xml"})
