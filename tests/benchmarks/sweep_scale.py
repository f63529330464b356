# ruff: noqa: E402  (imports follow the sys.path line that lets this run as a script)
"""Sweeps at scale: the idle sweep and retention (and, on request, a reconcile pass) over a large
fleet on Azurite.

Seeds an in-memory Azurite with N environment records (default 100,000, 10 per owner), 10,000 of
them RUNNING and 1,000 of those idle, 1,000 STOPPED ones past retention (one in ten with `keep`),
the rest STOPPED / ERROR / DELETED: the record and the owner's usage counters in one
owner-partition transaction, the status index rows and id -> owner directory rows in
transactions of 100 per partition, all built with the store's own row builders
(shared/adapters/tables/rows.py) and inserted from a thread pool. Seeding is setup, timed apart.

Then, with a fixed clock and the store's request counters reset before each phase:
1. the idle sweep (Sweeps.idle): wall time, table queries (pages), point reads, writes,
   transactions, accepted stop commands (orchestrations are not run), and the goal check
   "queries within running/1000 + a small constant";
2. the same sweep again (it must find nothing), then the budget pass the same timer runs
   (Sweeps.budgets; no deployment budget and no claims in this fleet: it must stop nothing);
3. retention (Sweeps.retention), then the snapshot prune pass the same daily timer runs
   (SnapshotService.prune_pass: a snapshot log read per workspace it looks at; this fleet's
   workspaces have no snapshots, so it must ask none to prune);
4. with --reconcile, a reconcile pass (Reconciler.run) over a SimulatedCompute holding a
   compute for every RUNNING record, with a few orphans and missing computes planted as drift.
   Off by default (it adds a minute or two): it reads the live index partitions, and records only
   where index and compute disagree.

Run: `make bench-sweeps` (add `BENCH_SWEEPS_ARGS=--reconcile` for the reconcile pass), or
`.venv/bin/python tests/benchmarks/sweep_scale.py --help` for a smaller fleet, e.g.
`--environments 10000 --running 1000 --idle 100 --retirable 100`. Exits non-zero when a count
is not what was seeded.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from azure.data.tables import TableServiceClient
from benchlib import app_transport, cpu_seconds
from pydantic import SecretStr

from devhost.azurite import azurite_tables
from shared import agent_tokens, wiring
from shared.adapters.compute.simulated import SimulatedCompute
from shared.adapters.tables import rows
from shared.adapters.tables.records import TableEnvironmentStore
from shared.adapters.tables.status_index import DIRECTORY
from shared.domain.catalog import SIZES
from shared.domain.environment import Actor, AuditEvent, CloudProvider, Environment, Policy, Status
from shared.domain.lifecycle import ACTIVE
from shared.domain.operation import Kind, operation_id
from shared.domain.quota import Usage
from shared.domain.resources import compute_name, workspace_name
from shared.secrets import PASSWORD_KEY, generate_password, seal
from shared.services.environments import EnvironmentService
from shared.services.ports import ComputeSpec, Workspace
from shared.services.reconcile import Reconciler
from shared.services.snapshots import SnapshotService
from shared.services.sweeps import Sweeps
from shared.settings import Settings
from tests.e2e.harness import pids_mentioning
from tests.fakes import ScriptedAgent

try:
    from shared.adapters.tables import batch as tables_batch
except ImportError:  # --before a commit without it: seed with today's writer (setup, not measured)
    from benchlib import today_module

    tables_batch = today_module("shared/adapters/tables/batch.py")

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PREFIX = "bench"
BATCH = 100  # the most operations an entity-group transaction may hold
SECRETS_KEY = "ZGV2OC1sb2NhbC1vbmx5LXNlYWxpbmcta2V5LTMyYiE="  # the tests' local-only key
JWT_SECRET = "bench-only-jwt-secret-0123456789-abcdef"  # never used to sign anything
POLICY = Policy(max_session_hours=12, retention_days=30)
IDLE_TIMEOUT = 30
GOAL_CONSTANT = 5  # the "small constant" of the goal: queries <= running/1000 + 5
# Non-running environments, by their position in a cycle of 45: 35 STOPPED, 1 ERROR, 9 DELETED
# (70% / 2% / 18% of the default fleet).
CYCLE = 45
STOPPED_SLOTS = 35
ERROR_SLOTS = 1


@dataclass
class Fleet:
    """What was seeded, and what the sweeps are expected to find."""

    owner_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # partition -> rows
    index_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # partition -> rows
    running: list[Environment] = field(default_factory=list)
    idle: set[str] = field(default_factory=set)
    retirable: set[str] = field(default_factory=set)  # past retention, keep flag off
    kept: set[str] = field(default_factory=set)  # past retention, keep flag on
    by_status: dict[Status, int] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.owner_rows.values()) + sum(len(r) for r in self.index_rows.values())


def _environment(
    number: int, owner: str, status: Status, version: int, key: bytes, **times: datetime | bool | None
) -> Environment:
    env_id = f"env-{number:016x}"
    size = SIZES["medium"]
    running = status is Status.RUNNING
    name = compute_name(env_id)
    kind = {Status.RUNNING: Kind.CREATE, Status.STOPPED: Kind.STOP, Status.ERROR: Kind.START}.get(
        status, Kind.DELETE
    )
    return Environment(
        id=env_id,
        owner=owner,
        name=f"project-{number % 1000}",
        status=status,
        status_reason=status.value.lower(),
        template="python",
        size=size.name,
        cpu_cores=size.cpu_cores,
        memory_gb=size.memory_gb,
        storage_gb=size.storage_gb,
        cloud_provider=CloudProvider.LOCAL,
        cloud_region="local-simulated",
        vs_code_url=f"https://{name}.simulated.dev8.local/" if running else None,
        ssh_connection_string=f"ssh -p 2222 dev8@{name}.simulated.dev8.local" if running else None,
        ports=[3000, 8000],
        environment_variables={"APP_ENV": "development"},
        repository_url="https://example.com/team/project.git",
        idle_timeout_minutes=IDLE_TIMEOUT,
        operation=operation_id(kind, env_id, version),
        agent_token_hash=agent_tokens.digest(agent_tokens.mint(owner, env_id)),
        sealed_secrets=seal(key, env_id, {PASSWORD_KEY: generate_password()}),
        version=version,
        **times,  # type: ignore[arg-type]
    )


def build_fleet(
    environments: int, running: int, idle: int, retirable: int, per_owner: int, events: bool = False
) -> Fleet:
    """Every row to seed, laid out deterministically (owner = position // per_owner)."""
    key = base64.b64decode(SECRETS_KEY)
    fleet = Fleet()
    running_every = environments // running
    idle_every = running // idle if idle else 0
    stopped_total = (environments - running) * STOPPED_SLOTS // CYCLE
    retire_every = max(1, stopped_total // retirable) if retirable else 0
    counters = {"running": 0, "other": 0, "stopped": 0}
    usage: dict[str, Usage] = {}
    for number in range(environments):
        owner = f"user-{number // per_owner:06d}"
        partition = rows.owner_key(owner)
        extra: dict[str, Any] = {}
        if number % running_every == 0 and counters["running"] < running:
            r = counters["running"]
            counters["running"] += 1
            status = Status.RUNNING
            started = NOW - timedelta(minutes=60 + (r * 7) % 600)  # 1 to 11 hours ago: within the session
            if idle_every and r % idle_every == 0 and len(fleet.idle) < idle:
                accessed = NOW - timedelta(minutes=IDLE_TIMEOUT + 1 + r % 29)
            else:
                accessed = NOW - timedelta(minutes=r % (IDLE_TIMEOUT - 5))
            extra = {"started_at": started, "last_accessed_at": max(accessed, started)}
        else:
            slot = counters["other"] % CYCLE
            counters["other"] += 1
            if slot < STOPPED_SLOTS:
                status = Status.STOPPED
                s = counters["stopped"]
                counters["stopped"] += 1
                old = bool(retire_every) and s % retire_every == 0 and s // retire_every < retirable
                stopped = NOW - timedelta(days=31 + s % 30) if old else NOW - timedelta(days=1 + s % 28)
                extra = {"stopped_at": stopped, "last_accessed_at": stopped - timedelta(minutes=5)}
                if old:
                    extra["keep"] = (s // retire_every) % 10 == 9  # one in ten is exempt
            elif slot < STOPPED_SLOTS + ERROR_SLOTS:
                status = Status.ERROR
                extra = {"last_accessed_at": NOW - timedelta(days=2)}
            else:
                status = Status.DELETED
                extra = {"last_accessed_at": NOW - timedelta(days=40)}
        created = extra["last_accessed_at"] - timedelta(days=3)
        version = {Status.RUNNING: 3, Status.STOPPED: 5, Status.ERROR: 4, Status.DELETED: 6}[status]
        env = _environment(
            number,
            owner,
            status,
            version,
            key,
            created_at=created,
            updated_at=extra["last_accessed_at"],
            **extra,
        )
        fleet.by_status[status] = fleet.by_status.get(status, 0) + 1
        if status is Status.RUNNING:
            fleet.running.append(env)
            if env.last_accessed_at + timedelta(minutes=IDLE_TIMEOUT) <= NOW:
                fleet.idle.add(env.id)
        if status is Status.STOPPED and env.stopped_at and env.stopped_at < NOW - timedelta(days=30):
            (fleet.kept if env.keep else fleet.retirable).add(env.id)

        owned = fleet.owner_rows.setdefault(partition, [])
        owned.append(rows.environment_row(partition, env))
        if events:  # the audit event of the latest transition (sweeps never read events)
            event = AuditEvent(
                environment_id=env.id,
                from_status=None,
                to_status=status,
                actor=Actor.SYSTEM,
                reason=status.value.lower(),
                at=env.updated_at,
            )
            owned.append(rows.event_row_for(partition, event, owner, env.version))
        before = usage.get(partition, Usage())
        if status is not Status.DELETED:
            before = Usage(before.environments + 1, before.active + (status in ACTIVE))
        usage[partition] = before
        if rows.indexed(env):
            fleet.index_rows.setdefault(status.value, []).append(
                rows.index_row_for(env, env.version, env.idle_stop_at)
            )
        fleet.index_rows.setdefault(DIRECTORY, []).append(
            {"PartitionKey": DIRECTORY, "RowKey": env.id, "owner": owner}  # as the store's _register
        )
    for partition, counts in usage.items():
        owner = fleet.owner_rows[partition][0]["owner"]
        fleet.owner_rows[partition].append(rows.usage_row_for(partition, owner, counts))
    return fleet


def _batches(partitions: dict[str, list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    for partition_rows in partitions.values():
        for start in range(0, len(partition_rows), BATCH):
            yield partition_rows[start : start + BATCH]


def seed(
    connection: str, store: TableEnvironmentStore, fleet: Fleet, threads: int, with_sdk: bool
) -> tuple[float, int]:
    """Insert the fleet, one transaction per partition chunk of 100, from a thread pool; returns
    (seconds, transactions)."""
    local = threading.local()

    def submit(table: str, batch: list[dict[str, Any]]) -> None:
        if not hasattr(local, "service"):
            local.service = TableServiceClient.from_connection_string(connection)
        client = local.service.get_table_client(table)
        if with_sdk:
            client.submit_transaction([("create", row) for row in batch])
        else:
            tables_batch.submit(client, [("create", row) for row in batch])

    work: list[tuple[str, list[dict[str, Any]]]] = [
        *((store.environments_table, batch) for batch in _batches(fleet.owner_rows)),
        *((store.index_table, batch) for batch in _batches(fleet.index_rows)),
    ]
    started = time.perf_counter()
    done = 0
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(lambda item: submit(*item), work):
            done += 1
            if done % 2000 == 0:
                print(
                    f"  ... {done}/{len(work)} transactions ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    return time.perf_counter() - started, len(work)


AZURITE: list[int] = []  # the run's Azurite, whose CPU each phase reports beside this process's


def measure(store: TableEnvironmentStore, phase: Callable[[], Any]) -> tuple[Any, float, dict[str, int]]:
    store.stats.reset()
    started, cpu, azurite = time.perf_counter(), time.process_time(), cpu_seconds(AZURITE)
    result = phase()
    stats = store.stats.snapshot()
    stats["cpu_ms"] = round((time.process_time() - cpu) * 1000)
    stats["azurite_cpu_ms"] = round((cpu_seconds(AZURITE) - azurite) * 1000)
    return result, time.perf_counter() - started, stats


def show(title: str, seconds: float, stats: dict[str, int], **figures: object) -> None:
    print(f"\n{title}")
    print(f"  wall time         : {seconds:8.2f} s")
    cpu, azurite = stats["cpu_ms"] / 1000, stats["azurite_cpu_ms"] / 1000
    print(f"  CPU, this process : {cpu:8.2f} s (Azurite's meanwhile: {azurite:.2f} s)")
    for name in ("queries", "point_reads", "writes", "transactions"):
        label = "table queries (pages)" if name == "queries" else name.replace("_", " ")
        print(f"  {label:<18}: {stats[name]:8d}")
    requests = stats["queries"] + stats["point_reads"] + stats["writes"] + stats["transactions"]
    if requests:
        print(f"  {'per request':<18}: {seconds / requests * 1000:8.1f} ms (wall time / requests)")
    for name, value in figures.items():
        print(f"  {name.replace('_', ' '):<18}: {value!s:>8}")


def _spec(env: Environment) -> ComputeSpec:
    return ComputeSpec(
        name=compute_name(env.id),
        environment_id=env.id,
        owner=env.owner,
        image="dev8/python:bench",
        cpu_cores=env.cpu_cores,
        memory_gb=env.memory_gb,
        ports=tuple(env.ports),
        environment_variables={},
        workspace=Workspace(workspace_name(env.id), workspace_name(env.id), env.storage_gb),
        secure_environment={},
    )


def run(args: argparse.Namespace) -> list[str]:
    problems: list[str] = []
    print(
        f"fleet: {args.environments} environments, {args.running} RUNNING ({args.idle} idle), "
        f"{args.retirable} past retention, ~{args.per_owner} per owner"
    )
    started = time.perf_counter()
    fleet = build_fleet(
        args.environments, args.running, args.idle, args.retirable, args.per_owner, args.events
    )
    built = time.perf_counter() - started
    counts = ", ".join(f"{status.value} {count}" for status, count in sorted(fleet.by_status.items()))
    print(f"built {fleet.row_count} rows in {built:.1f} s ({counts}; {len(fleet.owner_rows)} owners)")

    with azurite_tables() as connection:
        port = connection.split("TableEndpoint=http://127.0.0.1:", 1)[1].split("/", 1)[0]
        AZURITE[:] = pids_mentioning(f"--tablePort\0{port}\0")  # argv is NUL-separated
        # The store as the app builds it (service_from_settings): its transport, its connection pool.
        service_client = TableServiceClient.from_connection_string(connection, **app_transport())
        store = TableEnvironmentStore(service_client, PREFIX)
        store.ensure_tables()
        seconds, transactions = seed(connection, store, fleet, args.threads, args.seed_with_sdk)
        print(
            f"seeded in {seconds:.1f} s: {transactions} transactions "
            f"({fleet.row_count / seconds:,.0f} rows/s, {args.threads} threads, "
            f"{'submit_transaction' if args.seed_with_sdk else 'batch.submit'}) [setup, not measured]"
        )

        settings = Settings(
            jwt_secret=SecretStr(JWT_SECRET),
            tables_connection=SecretStr(connection),
            secrets_key=SecretStr(SECRETS_KEY),
            table_prefix=PREFIX,
            max_session_hours=POLICY.max_session_hours,
            retention_days=POLICY.retention_days,
        )

        def clock() -> datetime:
            return NOW

        service = EnvironmentService(store, settings, clock, wiring.placement(settings))
        sweeps = Sweeps(store, service, clock, POLICY, index=store.index)

        # 1. The idle sweep.
        report, seconds, stats = measure(store, sweeps.idle)
        stopped = {result.environment.id for result in report.accepted}
        budget = args.running / 1000
        show(
            "idle sweep",
            seconds,
            stats,
            candidates=report.candidates,
            stops_accepted=len(stopped),
            repaired=report.repaired,
            skipped=report.skipped,
        )
        goal = stats["queries"] <= budget + GOAL_CONSTANT
        print(
            f"  goal check        : {stats['queries']} queries vs running/1000 = {budget:g} "
            f"(+ {GOAL_CONSTANT} allowed): {'met' if goal else 'NOT MET'}"
        )
        if stopped != fleet.idle:
            problems.append(f"idle sweep stopped {len(stopped)}, expected the {len(fleet.idle)} idle ones")
        if not goal:
            problems.append("idle sweep queries exceed running/1000 + a small constant")
        records = [store.get(env.owner, env.id) for env in fleet.running if env.id in stopped]
        statuses = {record.status if record else None for record in records}
        if statuses - {Status.STOPPING}:
            problems.append(f"swept environments are {statuses}, not all STOPPING")

        # 2. The same sweep again: every idle environment left RUNNING, so nothing is offered.
        again, seconds, stats = measure(store, sweeps.idle)
        show(
            "idle sweep, second pass",
            seconds,
            stats,
            candidates=again.candidates,
            stops_accepted=len(again.accepted),
        )
        if again.candidates or again.accepted:
            problems.append("a second idle sweep found candidates")

        budgets, seconds, stats = measure(store, sweeps.budgets)
        show("budget pass (no budgets)", seconds, stats, stops_accepted=len(budgets.accepted))
        if budgets.accepted:
            problems.append("the budget pass stopped environments where no budget applies")

        # 3. Retention.
        retired, seconds, stats = measure(store, sweeps.retention)
        retiring = {result.environment.id for result in retired.accepted}
        show(
            "retention sweep",
            seconds,
            stats,
            candidates=retired.candidates,
            retirements=len(retiring),
            kept_flag=len(fleet.kept),
        )
        if retiring != fleet.retirable:
            problems.append(f"retention retired {len(retiring)}, expected {len(fleet.retirable)}")

        agent = ScriptedAgent()
        snapshots = SnapshotService(service, store, store.snapshot_logs, lambda: agent, settings, clock)
        asked, seconds, stats = measure(store, lambda: snapshots.prune_pass(store.index))
        show("snapshot prune pass", seconds, stats, logs_read=stats["point_reads"], asked=asked)
        if asked or agent.asked:
            problems.append(f"the prune pass asked {asked} workspaces without snapshots to prune")

        # 4. A reconcile pass: a compute for every RUNNING record (the swept ones too: their stop has
        # not run), minus a few deleted behind Dev8's back, plus a few with no record at all.
        if not args.reconcile:
            print("\nreconcile pass: not run (add --reconcile; ~3 point reads per RUNNING environment)")
        else:
            compute = SimulatedCompute(boot_polls=0)
            missing = {env.id for env in fleet.running if env.id not in fleet.idle}
            missing = set(sorted(missing)[: args.drift])
            for env in fleet.running:
                if env.id not in missing:
                    compute.create(_spec(env))
            strays = [f"env-{0xF0000000_00000000 + n:016x}" for n in range(args.drift)]
            for stray in strays:
                compute.create(_spec(fleet.running[0].model_copy(update={"id": stray, "owner": "nobody"})))
            for status in compute.list():
                compute.status(status.name)  # booted: RUNNING
            reconciler = Reconciler(
                store,
                service,
                compute,
                clock,
                stuck_after=timedelta(minutes=30),
                orphan_grace=timedelta(0),
                index=store.index,
                orphans=store.orphans,
            )
            computes = len(compute.list())
            outcome, seconds, stats = measure(store, lambda: reconciler.run(lambda instance: True))
            show(
                "reconcile pass",
                seconds,
                stats,
                computes_listed=computes,
                orphans_removed=len(outcome.orphans_removed),
                stopped_no_compute=len(outcome.stopped),
                redriven=len(outcome.redriven),
                failed=len(outcome.failed),
            )
            if len(outcome.orphans_removed) != len(strays) or set(outcome.stopped) != missing:
                problems.append(
                    f"reconcile removed {len(outcome.orphans_removed)} orphans (planted {len(strays)}) and "
                    f"stopped {len(outcome.stopped)} (planted {len(missing)})"
                )
        service_client.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--environments", type=int, default=100_000)
    parser.add_argument("--running", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=1_000, help="RUNNING ones idle past their timeout")
    parser.add_argument("--retirable", type=int, default=1_000, help="STOPPED ones past retention")
    parser.add_argument("--per-owner", type=int, default=10)
    parser.add_argument("--threads", type=int, default=4, help="seeding threads")
    parser.add_argument("--drift", type=int, default=10, help="orphans and missing computes planted")
    parser.add_argument("--reconcile", action="store_true", help="also time a reconcile pass")
    parser.add_argument("--events", action="store_true", help="also seed one audit event per environment")
    parser.add_argument(
        "--seed-with-sdk",
        action="store_true",
        help="seed with TableClient.submit_transaction (same requests, several times slower)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.idle <= args.running <= args.environments // args.per_owner * args.per_owner:
        parser.error("need 0 < idle <= running <= environments")
    if args.drift > args.running - args.idle:
        parser.error("drift must not exceed the active RUNNING environments")
    started = time.perf_counter()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    problems = run(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f} at the end")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    from benchlib import before_and_after  # --before REV: the same run over REV's code first

    compared = before_and_after(__file__)
    sys.exit(main() if compared is None else compared)
