"""200 concurrent creates on the simulated backend: the time until all are RUNNING, and duplicates.

A real `python -m devhost` (simulated compute, its own Azurite) gets every create at once: --users
users with --per-user environments each, every request with its own Idempotency-Key, plus a repeat
of every --repeat-every-th request with the same key and body (a client retrying after a lost
answer), all in flight together. Then each user's list is polled (every --poll seconds, as a dashboard
would) until all environments are RUNNING.

Duplicates counted, each of which must be 0:
  ids          unique requests that got an id another unique request also got
  repeats      repeated requests answered with a different environment than the first
  records      environments listed beyond the number of unique requests
  compute      RUNNING environments sharing a compute resource (the simulated URL names it)
  workspaces   workspace directories beyond one per environment
  provisions   provisioning orchestrations beyond one per environment (the host's Durable API)

Run: `make bench-api`, or `.venv/bin/python tests/benchmarks/concurrent_creates.py [--users 20] ...`.
Only 127.0.0.1 is loaded; the run is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import cpu_seconds, percentile  # also puts the repository on sys.path

from devhost.host.server import SYSTEM_KEY_FILE
from tests.e2e.harness import DevHost, kill_all, pids_mentioning


async def burst(host: DevHost, args: argparse.Namespace) -> dict[str, Any]:
    users = [f"burst-user-{n:03d}" for n in range(args.users)]
    tokens = {user: host.mint(user) for user in users}
    requests = [(user, f"key-{user}-{i}", {"name": f"burst-{i}", "template": "node", "size": "small"})
                for user in users for i in range(args.per_user)]  # fmt: skip
    repeats = requests[:: args.repeat_every]
    refusals: list[tuple[str, int, str | None, str | None]] = []
    timeout = aiohttp.ClientTimeout(total=args.time_limit)
    # No connection limit: every request is in flight at once.
    async with aiohttp.ClientSession(
        host.url, connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as http:

        async def create(user: str, key: str, body: dict[str, Any]) -> tuple[int, str | None, float]:
            headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": key}
            started = time.perf_counter()
            async with http.post("/api/v1/environments", json=body, headers=headers) as answer:
                payload = await answer.json(content_type=None)
                env_id = payload.get("environment", {}).get("id") if answer.status in (200, 201) else None
                if env_id is None:  # what went wrong, for the report
                    refusals.append((key, answer.status, payload.get("code"), payload.get("error")))
                return answer.status, env_id, time.perf_counter() - started

        azurite = pids_mentioning(str(host.data_dir / "azurite"))  # the host's own Azurite
        cpu_before = cpu_seconds([host.process.pid])
        azurite_before = cpu_seconds(azurite)
        began = time.perf_counter()
        answers = await asyncio.gather(*(create(*r) for r in requests), *(create(*r) for r in repeats))
        all_answered = time.perf_counter() - began
        firsts, seconds = answers[: len(requests)], answers[len(requests) :]

        async def listing(user: str) -> list[dict[str, Any]]:
            headers = {"Authorization": f"Bearer {tokens[user]}"}
            async with http.get("/api/v1/environments", headers=headers) as answer:
                return list((await answer.json())["environments"])

        deadline = began + args.time_limit
        while True:
            envs = [env for batch in await asyncio.gather(*map(listing, users)) for env in batch]
            statuses = Counter(env["status"] for env in envs)
            if statuses["RUNNING"] >= len(requests) or time.perf_counter() > deadline:
                break
            if not statuses.keys() & {"CREATING", "STARTING"}:
                break  # settled short of the goal (ERROR or refused creates): nothing more will come
            await asyncio.sleep(args.poll)
        all_running = time.perf_counter() - began
        host_cpu = cpu_seconds([host.process.pid]) - cpu_before
        azurite_cpu = cpu_seconds(azurite) - azurite_before

        # The webhooks need the host's system key, which it writes to its state directory.
        key = (host.data_dir / "durable" / SYSTEM_KEY_FILE).read_text()
        query = {"top": "100000", "code": key}
        async with http.get("/runtime/webhooks/durabletask/instances/", params=query) as answer:
            instances = await answer.json()
    return {
        "requests": requests,
        "firsts": firsts,
        "seconds": seconds,
        "repeats": repeats,
        "envs": envs,
        "statuses": statuses,
        "all_answered": all_answered,
        "all_running": all_running,
        "host_cpu": host_cpu,
        "azurite_cpu": azurite_cpu,
        "instances": instances,
        "refusals": refusals,
    }


def report(result: dict[str, Any], host: DevHost, args: argparse.Namespace) -> int:
    requests, firsts, seconds, envs = result["requests"], result["firsts"], result["seconds"], result["envs"]
    codes = Counter(code for code, _, _ in firsts + seconds)
    latencies = [latency for _, _, latency in firsts + seconds]
    unique_ids = [env_id for _, env_id, _ in firsts if env_id]
    first_by_key = {key: env_id for (_, key, _), (_, env_id, _) in zip(requests, firsts, strict=True)}
    running = [env for env in envs if env["status"] == "RUNNING"]
    workspaces = [p for p in (host.data_dir / "workspaces").iterdir() if not p.name.startswith(".")]
    provisions = Counter(
        i["instanceId"].split("-create", 1)[0] for i in result["instances"] if "-create" in i["instanceId"]
    )
    duplicates = {
        "ids": len(unique_ids) - len(set(unique_ids)),
        "repeats": sum(
            env_id != first_by_key[key]
            for (_, key, _), (_, env_id, _) in zip(result["repeats"], seconds, strict=True)
        ),
        "records": max(0, len(envs) - len(requests)),
        "compute": len(running) - len({env["vs_code_url"] for env in running}),
        "workspaces": max(0, len(workspaces) - len(envs)),
        "provisions": sum(count - 1 for count in provisions.values()),
    }
    print(
        f"\n{len(requests)} concurrent creates ({args.users} users x {args.per_user}) "
        f"+ {len(seconds)} repeats with the same Idempotency-Key, all in flight at once"
    )
    p50, p99 = (percentile(latencies, pct) * 1000 for pct in (50, 99))
    print(f"answers: {dict(sorted(codes.items()))}; create latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    print(f"all answered after {result['all_answered']:.2f} s")
    print(f"statuses: {dict(result['statuses'])}; all RUNNING after {result['all_running']:.2f} s")
    cpu, count = result["host_cpu"], len(requests)
    print(f"host CPU from the first create until all RUNNING: {cpu:.1f} s ({cpu / count:.3f} s each)")
    print(f"Azurite's CPU meanwhile: {result['azurite_cpu']:.1f} s (the tables; Azure's in production)")
    print(f"duplicates: {duplicates} -> total {sum(duplicates.values())}")
    for key, status, code, message in result["refusals"]:
        print(f"  {key} answered {status} {code}: {message}")
    complete = result["statuses"]["RUNNING"] == len(requests) and len(provisions) == len(requests)
    if not complete:
        print(f"NOT all environments came up: {len(provisions)} provisioned, {len(running)} RUNNING")
    return 0 if complete and not any(duplicates.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--repeat-every", type=int, default=5, help="repeat every n-th request")
    parser.add_argument("--time-limit", type=float, default=300)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls of every list")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dev8-bench-creates-") as workdir:
        host = DevHost.start(
            Path(workdir),
            compute_backend="simulated",
            settings={
                "DEV8_MAX_ENVIRONMENTS_PER_USER": str(max(10, args.per_user)),
                "DEV8_MAX_RUNNING_PER_USER": str(args.per_user),
            },
        )
        try:
            result = asyncio.run(burst(host, args))
            return report(result, host, args)
        finally:
            host.stop()
            kill_all(host.leftovers())


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
