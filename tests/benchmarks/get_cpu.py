"""CPU of one GET of an environment, in-process: the app's own handler from the request object to the
response object (no HTTP server, no Functions host), beside the Table SDK's point read of the same
row, the floor any GET pays (the async client's, run on an event loop as the GET is, or the sync
client's for a commit whose GET was sync). Both against an Azurite of the run's own; CPU is this process's
(time.process_time), so Azurite's share is not counted. Prints the figures, what a single
conditional update and an entity group transaction cost beside them, a list of an owner with
--deleted deleted environments, and, with --profile, where the GET's time goes (cProfile, by own
time).

Run: `.venv/bin/python tests/benchmarks/get_cpu.py [--requests 2000] [--profile] [--before [REV]]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import inspect
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib  # puts the repository on sys.path


def setup(connection: str, data_dir: Path) -> tuple[str, str, str]:
    """Settings of a local app on `connection`, one RUNNING environment; (token, id, table)."""
    jwt_secret = secrets.token_urlsafe(32)
    os.environ.update(
        {
            "DEV8_JWT_SECRET": jwt_secret,
            "DEV8_JWT_ISSUER": "dev8-bench",
            "DEV8_JWT_AUDIENCE": "dev8-api",
            "DEV8_TABLES_CONNECTION": connection,
            "DEV8_TABLE_PREFIX": "bench",
            "DEV8_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "DEV8_COMPUTE_BACKEND": "simulated",
            "DEV8_WORKSPACE_BACKEND": "local",
            "DEV8_LOCAL_DATA_DIR": str(data_dir),
            "DEV8_RATE_READS_PER_MINUTE": "1000000",  # the loop is one owner: not a rate test
        }
    )
    from shared import wiring
    from shared.auth import mint_token
    from shared.domain.requests import CreateEnvironmentRequest

    wiring.reset()
    service = wiring.environments()
    request = CreateEnvironmentRequest.model_validate({"name": "bench", "template": "python"})
    env = service.create("alice", request).environment
    service.settle("alice", env.id, env.operation or "", True, "running")
    token = mint_token(jwt_secret, "alice", issuer="dev8-bench", audience="dev8-api")
    return token, env.id, "benchEnvironments"


def per_call(call: object, count: int) -> float:
    """CPU seconds per call, after a warm-up."""
    for _ in range(50):
        call()  # type: ignore[operator]
    started = time.process_time()
    for _ in range(count):
        call()  # type: ignore[operator]
    return (time.process_time() - started) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="print where a GET's CPU goes")
    parser.add_argument("--deleted", type=int, default=20, help="deleted environments beside the list's one")
    args = parser.parse_args()

    import azure.functions as func
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.data.tables import TableClient
    from azure.data.tables.aio import TableClient as AsyncTableClient

    from devhost import azurite

    with tempfile.TemporaryDirectory(prefix="dev8-get-cpu-") as directory:
        server = azurite.start(Path(directory))
        try:
            token, environment_id, table = setup(server.connection_string, Path(directory) / "data")
            from api.environments import api_get_environment
            from shared.adapters.tables import rows

            try:
                from shared.adapters.tables import batch
            except ImportError:  # --before a commit without it: today's, for its line only
                batch = benchlib.today_module("shared/adapters/tables/batch.py")
            try:
                from shared.adapters.tables import writes as app_writes
            except ImportError:  # --before a commit without it: the SDK's update stands in
                app_writes = None
            from shared.adapters.tables.client import transport_options

            request = func.HttpRequest(
                method="GET",
                url=f"http://localhost/api/v1/environments/{environment_id}",
                headers={"Authorization": f"Bearer {token}"},
                route_params={"environment_id": environment_id},
                body=b"",
            )

            # The GET runs on an event loop (the worker's) since it is async, on the caller's
            # thread before; its floor is the SDK's read of the same kind, run the same way.
            loop = asyncio.new_event_loop()

            def answer_of(result: Any) -> Any:
                """A handler's answer, run on the loop when the handler is async (the route
                decorators hide which it is)."""
                return loop.run_until_complete(result) if inspect.isawaitable(result) else result

            def get() -> None:
                answer = answer_of(api_get_environment(request))
                assert answer.status_code == 200, answer.get_body()

            first = api_get_environment(request)
            on_loop = inspect.isawaitable(first)
            answer_of(first)

            # The floors are the SDK clients as the app builds them (no per-request proxy lookups).
            options = transport_options()
            client = TableClient.from_connection_string(server.connection_string, table_name=table, **options)
            async_client = AsyncTableClient.from_connection_string(
                server.connection_string, table_name=table, transport=AioHttpTransport(use_env_settings=False)
            )
            keys = {"partition_key": rows.owner_key("alice"), "row_key": rows.env_row(environment_id)}
            scratch = {"PartitionKey": "bench", "RowKey": "scratch", "value": "x" * 100}
            client.upsert_entity(scratch)

            def read() -> None:
                client.get_entity(**keys)

            def read_async() -> None:
                loop.run_until_complete(async_client.get_entity(**keys))

            def update() -> None:
                client.update_entity(scratch)

            def update_as_the_app_does() -> None:
                if app_writes is None:
                    client.update_entity(scratch)
                else:
                    app_writes.update(client, scratch)

            def transaction(size: int, submit: Any) -> object:
                row_keys = ["scratch", *(f"scratch-{n}" for n in range(1, size))]
                return lambda: submit(client, [("upsert", {**scratch, "RowKey": key}) for key in row_keys])

            floors = {"sync": read, "async": read_async}
            rounds = [
                {
                    "get": per_call(get, args.requests),
                    **{k: per_call(f, args.requests) for k, f in floors.items()},
                }
                for _ in range(3)
            ]
            app, sync_sdk, async_sdk = (sorted(r[kind] for r in rounds)[1] for kind in ("get", *floors))
            sdk = async_sdk if on_loop else sync_sdk
            writes = args.requests // 4
            sdk_batch = TableClient.submit_transaction
            lean_batch = batch.submit
            calls = (
                update,
                update_as_the_app_does,
                transaction(1, sdk_batch),
                transaction(3, sdk_batch),
                transaction(3, lean_batch),
            )
            single, app_single, one, three, lean = (per_call(call, writes) for call in calls)
            print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; median of 3 rounds")
            kind = "async, on an event loop" if on_loop else "sync, on this thread"
            print(f"  {args.requests} x GET /environments/{{id}} in-process : {app * 1000:6.2f} ms CPU each")
            print(f"    ({kind})")
            print(
                f"  {args.requests} x TableClient.get_entity (sync)     : {sync_sdk * 1000:6.2f} ms CPU each"
            )
            print(
                f"  {args.requests} x aio TableClient.get_entity        : {async_sdk * 1000:6.2f} ms CPU each"
            )
            print(f"  ratio to the read of its kind                : {app / sdk:6.2f}x (goal <= 1.5x)")
            print("Writes, for scale (what a record's commit costs):")
            print(f"  {writes} x update_entity                      : {single * 1000:6.2f} ms CPU each")
            print(f"  {writes} x the app's writes.update            : {app_single * 1000:6.2f} ms CPU each")
            print(f"  {writes} x submit_transaction, 1 operation    : {one * 1000:6.2f} ms CPU each")
            print(f"  {writes} x submit_transaction, 3 operations   : {three * 1000:6.2f} ms CPU each")
            print(f"  {writes} x the app's batch.submit, 3 operations : {lean * 1000:6.2f} ms CPU each")
            # A dashboard's list of an owner who has deleted environments before (records kept).
            from api.environments import api_list_environments
            from shared import wiring
            from shared.domain.lifecycle import Command
            from shared.domain.requests import CreateEnvironmentRequest

            service = wiring.environments()
            for _ in range(args.deleted):
                gone = service.create(
                    "alice", CreateEnvironmentRequest(name="gone", template="python")
                ).environment
                service.settle("alice", gone.id, gone.operation or "", True, "running")
                gone = service.command("alice", gone.id, Command.DELETE).environment
                service.settle("alice", gone.id, gone.operation or "", True, "deleted")
            listing = func.HttpRequest(
                method="GET",
                url="http://localhost/api/v1/environments",
                headers={"Authorization": f"Bearer {token}"},
                body=b"",
            )

            def list_all() -> None:
                answer = answer_of(api_list_environments(listing))
                assert answer.status_code == 200, answer.get_body()

            lists = per_call(list_all, writes)
            print(f"Lists, one live environment and {args.deleted} deleted ones (their records are kept):")
            print(f"  {writes} x GET /environments in-process          : {lists * 1000:6.2f} ms CPU each")
            if args.profile:
                profile = cProfile.Profile()
                profile.runcall(lambda: [get() for _ in range(500)])
                stats = pstats.Stats(profile)
                stats.sort_stats("tottime").print_stats(25)
                stats.sort_stats("cumulative").print_stats(40)
            client.close()
            loop.run_until_complete(async_client.close())
            try:
                from shared.adapters.tables.loop import close_running_loop
            except ImportError:  # --before a commit without reads on the event loop
                pass
            else:
                loop.run_until_complete(close_running_loop())
            loop.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
