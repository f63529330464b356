"""Small helpers shared by the benchmark scripts (figures, a local host to measure, load loops)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: `python tests/benchmarks/NAME.py`
    sys.path.insert(0, str(ROOT))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads), from /proc."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 1000 samples is the 990th smallest)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(samples: list[float]) -> dict[str, float]:
    """p50/p99/mean/max in milliseconds of samples in seconds."""
    return {
        "p50": percentile(samples, 50) * 1000,
        "p99": percentile(samples, 99) * 1000,
        "mean": statistics.fmean(samples) * 1000,
        "max": max(samples) * 1000,
    }


async def closed_loop(
    call: Callable[[int], Awaitable[None]], *, clients: int, requests: int, time_limit: float
) -> tuple[list[float], float]:
    """`clients` workers each send their next request as soon as the last one answered, until
    `requests` were sent in all or `time_limit` seconds passed. Returns the latencies (seconds) and
    the wall time of the whole phase."""
    latencies: list[float] = []
    next_index = 0
    deadline = time.monotonic() + time_limit

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests and time.monotonic() < deadline:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - started


TODAY = "DEV8_BENCH_TODAY"  # the tree a --before run was started from


def app_transport() -> dict[str, Any]:
    """The table transport options the app builds its clients with, for a benchmark's own clients;
    the SDK's defaults when a --before commit predates them (its app used those)."""
    try:
        from shared.adapters.tables.client import transport_options
    except ImportError:
        return {}
    return transport_options()


def today_module(relative: str) -> ModuleType:
    """A module of the tree `--before` was run from, for setup that is not measured (seeding an
    older commit's tables with today's writer). The module must import nothing of Dev8's."""
    path = Path(os.environ.get(TODAY, ROOT)) / relative
    spec = importlib.util.spec_from_file_location(f"today_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def before_and_after(script: str, argv: list[str] | None = None) -> int | None:
    """`--before [REV]` on any benchmark's command line (REV: a commit, HEAD~1 by default): run
    the same script, with the same options, first over REV's code and then over this tree's, so
    both figures come from the same machine in the same hour. REV's files are exported with `git
    archive` into a temporary directory and this tree's tests/ laid over them (the measurement is
    today's, the code under it REV's); node_modules is shared. Returns the exit code to end with,
    or None when --before was not given (the caller measures as usual).

    `--pairs N` runs the pair N times, alternating (before, after, before, after, ...): on a
    machine whose speed drifts within minutes, each before has an after measured next to it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--before" or a.startswith("--before=") for a in args):
        return None
    pairs = 1
    if "--pairs" in args:
        at = args.index("--pairs")
        pairs = int(args[at + 1])
        del args[at : at + 2]
    at = next(i for i, a in enumerate(args) if a == "--before" or a.startswith("--before="))
    flag = args.pop(at)
    if "=" in flag:
        rev = flag.split("=", 1)[1]
    elif at < len(args) and not args[at].startswith("-"):
        rev = args.pop(at)
    else:
        rev = "HEAD~1"
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", f"{rev}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    name = Path(script).resolve().relative_to(ROOT)
    with tempfile.TemporaryDirectory(prefix=f"dev8-before-{commit}-") as directory:
        old = Path(directory)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        shutil.rmtree(old / "tests", ignore_errors=True)
        shutil.copytree(ROOT / "tests", old / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        if (ROOT / "node_modules").is_dir():
            (old / "node_modules").symlink_to(ROOT / "node_modules")
        codes = []
        runs = ((f"BEFORE: {commit} ({rev})", old), ("AFTER: this tree", ROOT)) * pairs
        for n, (label, root) in enumerate(runs):
            pair = f" [pair {n // 2 + 1} of {pairs}]" if pairs > 1 else ""
            print(f"\n===== {label}{pair} =====", flush=True)
            env = {**os.environ, "PYTHONPATH": str(root), TODAY: str(ROOT)}
            done = subprocess.run([sys.executable, str(root / name), *args], cwd=root, env=env, check=False)
            codes.append(done.returncode)
    return max(codes)
