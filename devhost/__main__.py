"""`make dev`: the whole product on one machine.

Loads local.settings.json (or the sample) into the environment without overriding what is already
set, starts Azurite with its data under DEV8_LOCAL_DATA_DIR (unless one already answers), serves
function_app.py on http://localhost:7071 and prints a dev token with the curl lines to try it.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

from devhost import azurite
from devhost.dev8 import ROOT, local_host
from devhost.host.cors import Cors
from devhost.host.server import LocalHost
from shared import observability

DEV_USER = "dev-user"


def load_local_settings(root: Path = ROOT) -> Path:
    """Copy the Values of local.settings.json (else the sample) into os.environ; env wins."""
    path = root / "local.settings.json"
    if not path.exists():
        path = root / "local.settings.sample.json"
    values = json.loads(path.read_text())["Values"]
    for name, value in values.items():
        os.environ.setdefault(name, str(value))
    return path


def host_settings(path: Path) -> dict[str, object]:
    """The "Host" section of a local settings file (CORS, as `func start` reads it)."""
    section = json.loads(path.read_text()).get("Host") or {}
    return section if isinstance(section, dict) else {}


def table_port(connection: str) -> int | None:
    """The loopback port of a local (Azurite) table endpoint, or None for a remote account."""
    match = re.search(r"TableEndpoint=http://(?:127\.0\.0\.1|localhost):(\d+)/", connection)
    return int(match.group(1)) if match else None


def banner(host: LocalHost, token: str) -> str:
    api = f"{host.url}/api/v1"
    auth = '-H "Authorization: Bearer $DEV8_TOKEN"'
    return f"""
Dev8 is running on {host.url}  (Ctrl-C stops it)

  export DEV8_TOKEN={token}

  # create an environment, then watch it come up
  curl -s {auth} -H "Content-Type: application/json" \\
       -d '{{"name": "demo", "template": "node", "size": "small"}}' {api}/environments
  curl -s {auth} {api}/environments
  # open it: the URL and password of a RUNNING environment
  curl -s {auth} {api}/environments/<id>/connection
  # stop, start and delete it
  curl -s {auth} -X POST {api}/environments/<id>/stop
  curl -s {auth} -X POST {api}/environments/<id>/start
  curl -s {auth} -X DELETE {api}/environments/<id>

  # or with the command line (make setup installed it): .venv/bin/dev8 --help
  .venv/bin/dev8 create demo --template node --size small --wait

  API reference: {api}/docs  (OpenAPI document: {api}/openapi.json)
"""


async def serve(host: LocalHost, token: str) -> None:
    from devhost import environments

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.to_thread(environments.end_unowned_processes)
    await host.start()
    if "reconcile" in host.timers.timers:
        await host.timers.fire("reconcile")  # nothing stays RUNNING without its process
    print(banner(host, token), flush=True)
    await stop.wait()
    print("stopping…", flush=True)
    await host.stop()
    parked = await asyncio.to_thread(environments.park_all)
    print(f"stopped {parked} running environment(s); start them again after `make dev`", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    observability.configure_json_logs(sys.stdout)  # one JSON object per line, with the request id
    explicit_base_url = "DEV8_PUBLIC_BASE_URL" in os.environ
    settings_file = load_local_settings()
    if not explicit_base_url:
        # Workspaces' activity agents report to this host, on whatever port it serves.
        os.environ["DEV8_PUBLIC_BASE_URL"] = f"http://{args.host}:{args.port}"
    print(f"settings from {settings_file.name} (environment variables win)", flush=True)
    data_dir = Path(os.environ.get("DEV8_LOCAL_DATA_DIR", ".dev8")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    started: azurite.Azurite | None = None
    port = table_port(os.environ.get("DEV8_TABLES_CONNECTION", ""))
    if port is not None and not azurite.answers(port):
        (data_dir / "azurite").mkdir(exist_ok=True)
        started = azurite.start(data_dir / "azurite", port=port, persist=True)
        print(f"Azurite tables on 127.0.0.1:{port} (data in {data_dir / 'azurite'})", flush=True)
    try:
        from shared.settings import SettingsError, get_settings

        try:
            settings = get_settings()
        except SettingsError as exc:
            print(f"dev8: {exc}", file=sys.stderr)
            return 2
        from shared.auth import mint_token

        assert settings.jwt_secret is not None, "the local host signs dev tokens with DEV8_JWT_SECRET"
        token = mint_token(
            settings.jwt_secret.get_secret_value(),
            DEV_USER,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=12 * 3600,
        )
        host = local_host(
            host=args.host,
            port=args.port,
            state_dir=data_dir / "durable",
            run_timers=True,
            cors=Cors.from_host_settings(host_settings(settings_file)),
        )
        asyncio.run(serve(host, token))
        return 0
    finally:
        if started is not None:
            started.stop()


if __name__ == "__main__":
    sys.exit(main())
