"""Process groups on Linux, read from /proc: who is alive, who belongs to a group, and ending them.

The local compute backend starts each code-server as the leader of its own process group and must
later find and end that group, possibly from a restarted host that only has a pid in a state file.
Two hazards shape this module:
- pid reuse: a pid from a state file may now belong to another process. A process is identified by
  its pid plus the boot id and its start time (both from /proc), which no later process can share.
- escapees: code-server's terminals run in sessions (and groups) of their own, so killing the group
  alone would leave their shells behind; descendants of the group's members are ended too.
Zombies count as gone: they hold no resources and their parent reaps them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    zombie: bool
    start_ticks: int  # start time in clock ticks since boot


def _read_stat(pid: int | str) -> Proc | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return Proc(
        pid=int(raw.split(" ", 1)[0]),
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        zombie=fields[0] in ("Z", "X"),
        start_ticks=int(fields[19]),
    )


def snapshot() -> dict[int, Proc]:
    """Every live (non-zombie) process, by pid."""
    processes: dict[int, Proc] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            proc = _read_stat(entry.name)
            if proc is not None and not proc.zombie:
                processes[proc.pid] = proc
    return processes


def _boot_id() -> str:
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def identity(pid: int, *, include_zombie: bool = False) -> str | None:
    """A string naming this very process (None when no live process has the pid). A zombie still
    has its identity when asked for: a child that exited at once is one until its parent reaps it."""
    proc = _read_stat(pid)
    if proc is None or (proc.zombie and not include_zombie):
        return None
    return f"{_boot_id()}/{proc.start_ticks}"


def is_alive(pid: int, expected_identity: str) -> bool:
    """True when the process that had `expected_identity` still runs (not a reuse of its pid)."""
    return identity(pid) == expected_identity


def members(pgid: int, leader_identity: str) -> list[int]:
    """Live processes of the group our leader made; empty when that group is gone.

    With the leader dead, members still carrying its pgid are ours: Linux does not hand out a pid
    while a group still uses it as its id. A live process with the leader's pid but another start
    time means the group is gone and the pid reused.
    """
    processes = snapshot()
    leader = processes.get(pgid)
    if leader is not None and identity(pgid) != leader_identity:
        return []
    return sorted(pid for pid, proc in processes.items() if proc.pgid == pgid)


def _with_descendants(roots: Iterable[int], processes: dict[int, Proc]) -> dict[int, int]:
    """The roots and all their descendants, as pid -> start ticks (to recheck before a SIGKILL)."""
    children: dict[int, list[int]] = {}
    for proc in processes.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: dict[int, int] = {}
    pending = [pid for pid in roots if pid in processes]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found[pid] = processes[pid].start_ticks
            pending.extend(children.get(pid, ()))
    return found


def _survivors(targets: dict[int, int]) -> dict[int, int]:
    alive: dict[int, int] = {}
    for pid, ticks in targets.items():
        proc = _read_stat(pid)
        if proc is not None and not proc.zombie and proc.start_ticks == ticks:
            alive[pid] = ticks
    return alive


def _signal_each(targets: dict[int, int], sig: signal.Signals) -> None:
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already, or not ours
            os.kill(pid, sig)


def terminate_group(
    pgid: int,
    leader_identity: str,
    *,
    grace_seconds: float = 10.0,
    reap: Callable[[], object] | None = None,
    poll_seconds: float = 0.05,
) -> bool:
    """End the group (and its members' descendants): SIGTERM, wait up to `grace_seconds`, then
    SIGKILL. `reap` is called while waiting so that a leader we started does not linger as a
    zombie. Returns True when nothing of the group is left."""
    targets: dict[int, int] = {}
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        signalled: set[tuple[int, int]] = set()
        deadline = time.monotonic() + wait
        while True:
            if reap is not None:
                reap()
            # Collected again on every round, not once: a member may fork between the snapshot and
            # the signal (a shell's command substitution, a process shutting down), and that child,
            # never signalled, would outlive the stop. Each process gets each signal once.
            targets = _survivors(targets) | _with_descendants(members(pgid, leader_identity), snapshot())
            fresh = {pid: ticks for pid, ticks in targets.items() if (pid, ticks) not in signalled}
            _signal_each(fresh, sig)
            signalled.update(fresh.items())
            if not targets:
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(poll_seconds)
    return False


def find_by_argument(prefix: str) -> dict[int, list[str]]:
    """Live processes with a command-line argument starting with `prefix`: pid -> argv."""
    found: dict[int, list[str]] = {}
    for pid in snapshot():
        try:
            argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [arg.decode(errors="replace") for arg in argv if arg]
        if any(arg.startswith(prefix) for arg in args):
            found[pid] = args
    return found


def group_of(pid: int) -> int | None:
    proc = _read_stat(pid)
    return None if proc is None or proc.zombie else proc.pgid
