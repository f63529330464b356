"""A git server on loopback for the workspace setup's tests: git's own smart-HTTP backend
(`git http-backend`, run as CGI per request) behind a small TLS-terminating server whose
certificate comes from a certificate authority made for the run, so the https-only rule holds and
git verifies the server (GIT_SSL_CAINFO=ca_file). Repositories named private need HTTP basic auth
with the token as the password (any user name: GitHub takes x-access-token); a wrong or missing
one is 401, as GitHub answers. Shared by tests and benchmarks: imports nothing from pytest.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GIT = shutil.which("git") or "/usr/bin/git"
LOOPBACK = "127.0.0.1"


@dataclass
class GitServer:
    host: str  # 127.0.0.1:PORT, what GIT_TOKEN_HOSTS names
    ca_file: Path
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, authorized

    def url(self, repository: str) -> str:
        return f"https://{self.host}/{repository}.git"


def make_repository(root: Path, name: str, files: dict[str, str]) -> Path:
    """A bare repository `name`.git under `root` with one commit of `files`."""
    work = root / f".work-{name}"
    work.mkdir(parents=True)
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    for argv in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-q", "-m", f"{name}: first commit"],
        ["clone", "-q", "--bare", ".", str(root / f"{name}.git")],
    ):
        subprocess.run([GIT, *argv], cwd=work, env=env, check=True, capture_output=True)
    shutil.rmtree(work)
    return root / f"{name}.git"


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev8 test git CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@contextmanager
def git_server(root: Path, token: str, private: set[str]) -> Iterator[GitServer]:
    """Serves the bare repositories under `root` over https on a free loopback port."""
    ca_file, cert_file, key_file = _certificates(root)
    server_state = GitServer(host="", ca_file=ca_file)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # http.server's names
            self._backend()

        def do_POST(self) -> None:
            self._backend()

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return False
            try:
                _, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return password == token

        def _backend(self) -> None:
            path, _, query = self.path.partition("?")
            repository = path.lstrip("/").split(".git", 1)[0]
            authorized = self._authorized()
            server_state.requests.append((self.command, path, authorized))
            if repository in private and not authorized:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="dev8 test git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": str(root),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(length),
                "REMOTE_ADDR": self.client_address[0],
                **({"REMOTE_USER": "token"} if authorized else {}),
            }
            for name, value in self.headers.items():  # Git-Protocol, Content-Encoding...
                env["HTTP_" + name.upper().replace("-", "_")] = value
            done = subprocess.run(
                [GIT, "http-backend"], input=body, env=env, capture_output=True, check=False, timeout=60
            )
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server_state.host = f"127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
