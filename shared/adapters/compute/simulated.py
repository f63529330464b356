"""Simulated compute: no processes, just an in-memory table of compute resources.

For tests, load tests and demos: per-operation latency, transient faults (before the operation, or
after it as a lost response), scripted permanent faults, and a boot delay counted in status polls.
Seeded runs draw the same faults in the same order.

Specs (secure values included) are kept in memory only, so tests can check what reached the
backend; nothing here logs or persists them.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from shared.domain.logs import LogSource
from shared.domain.progress import Phase
from shared.domain.resources import ComputeState, compute_name
from shared.domain.snapshots import Reason, SnapshotEvent
from shared.errors import BackendError, PermanentBackendError, TransientBackendError
from shared.services.ports import ComputeSpec, ComputeStatus
from shared.settings import Settings

Operation = Literal["create", "status", "start", "stop", "delete", "list"]
OPERATIONS: tuple[Operation, ...] = ("create", "status", "start", "stop", "delete", "list")
BROKEN_IMAGE_MARKER = "broken"  # an image whose name contains this fails permanently on create/start
DOMAIN = "simulated.dev8.local"

_T = TypeVar("_T")


@dataclass(slots=True)
class _Resource:
    spec: ComputeSpec
    state: ComputeState
    polls_left: int  # status answers still PENDING this many times


class SimulatedCompute:
    """A `ComputeBackend` with no processes; thread-safe (the local host's workers share one)."""

    def __init__(
        self,
        *,
        latency_ms: int = 0,
        error_rate: float = 0.0,
        lost_response_rate: float = 0.0,
        boot_polls: int = 1,
        seed: int | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        _check_rates(error_rate, lost_response_rate)
        if latency_ms < 0 or boot_polls < 0:
            raise ValueError("latency_ms and boot_polls must not be negative")
        self._latency_seconds = latency_ms / 1000
        self._error_rate = error_rate
        self._lost_rate = lost_response_rate
        self._boot_polls = boot_polls
        self._random = random.Random(seed)  # noqa: S311  # fault injection, not security
        self._sleep = sleep
        self._lock = threading.Lock()
        self._resources: dict[str, _Resource] = {}
        self._scripted: dict[Operation, deque[BackendError]] = {op: deque() for op in OPERATIONS}
        self._calls: Counter[str] = Counter()
        self._creations = 0
        self._asked: dict[tuple[str, str], Reason | Literal["prune"]] = {}
        self._output: dict[tuple[str, LogSource], list[str]] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, sleep: Callable[[float], object] = time.sleep
    ) -> SimulatedCompute:
        return cls(
            latency_ms=settings.simulated_latency_ms,
            error_rate=settings.simulated_error_rate,
            lost_response_rate=settings.simulated_lost_response_rate,
            boot_polls=settings.simulated_boot_polls,
            seed=settings.simulated_seed,
            sleep=sleep,
        )

    # --- ComputeBackend ---------------------------------------------------------------------------

    def create(self, spec: ComputeSpec) -> ComputeStatus:
        def run() -> ComputeStatus:
            existing = self._resources.get(spec.name)
            if existing is not None:
                return self._view(existing)  # idempotent: never a second resource
            _refuse_broken(spec)
            self._creations += 1
            resource = _Resource(spec, ComputeState.PENDING, self._boot_polls)
            self._resources[spec.name] = resource
            return self._view(resource)

        return self._operate("create", run)

    def status(self, name: str) -> ComputeStatus:
        def run() -> ComputeStatus:
            resource = self._resources.get(name)
            if resource is None:
                return ComputeStatus(name=name, state=ComputeState.ABSENT)
            if resource.state is ComputeState.PENDING:
                if resource.polls_left > 0:
                    resource.polls_left -= 1
                else:
                    resource.state = ComputeState.RUNNING
            return self._view(resource)

        return self._operate("status", run)

    def start(self, spec: ComputeSpec) -> ComputeStatus:
        def run() -> ComputeStatus:
            _refuse_broken(spec)
            resource = self._resources.get(spec.name)
            if resource is None:
                # Like a container group deleted behind our back: bring it back from the spec.
                self._creations += 1
                resource = _Resource(spec, ComputeState.PENDING, self._boot_polls)
                self._resources[spec.name] = resource
            elif resource.state in (ComputeState.STOPPED, ComputeState.FAILED):
                resource.spec = spec  # a start may carry fresh secure values
                resource.state = ComputeState.PENDING
                resource.polls_left = self._boot_polls
            return self._view(resource)  # PENDING or RUNNING: a repeated start changes nothing

        return self._operate("start", run)

    def stop(self, name: str) -> ComputeStatus:
        def run() -> ComputeStatus:
            resource = self._resources.get(name)
            if resource is None:
                return ComputeStatus(name=name, state=ComputeState.ABSENT)
            resource.state = ComputeState.STOPPED
            return self._view(resource)

        return self._operate("stop", run)

    def delete(self, name: str) -> None:
        def run() -> None:
            self._resources.pop(name, None)  # already gone is done

        self._operate("delete", run)

    def list(self) -> list[ComputeStatus]:
        def run() -> list[ComputeStatus]:
            return [self._view(resource) for resource in self._resources.values()]

        return self._operate("list", run)

    def logs(self, name: str, source: LogSource, tail: int) -> str:
        with self._lock:
            resource = self._resources.get(name)
            if resource is None:
                return ""
            written = self._output.get((name, source), [])
            return "\n".join([f"[simulated] {name} {source.value}: {resource.state.value}", *written][-tail:])

    def write_output(self, name: str, source: LogSource, line: str) -> None:
        """Test control: a line the simulated container writes (to plant a secret, say)."""
        with self._lock:
            self._output.setdefault((name, source), []).append(line)

    # --- WorkspaceAgent: a simulated workspace has no files, so a snapshot finds nothing new ---

    def ask(self, environment_id: str, request_id: str, reason: Reason | Literal["prune"]) -> None:
        with self._lock:
            self._asked[(environment_id, request_id)] = reason

    def answer(self, environment_id: str, request_id: str) -> SnapshotEvent | None:
        with self._lock:
            reason = self._asked.get((environment_id, request_id))
            resource = self._resources.get(compute_name(environment_id))
        if reason is None or resource is None or resource.state is not ComputeState.RUNNING:
            return None  # like an agent that is not there to answer
        if reason == "prune":
            return SnapshotEvent(event="pruned")
        return SnapshotEvent(event="unchanged", reason=reason)

    def withdraw(self, environment_id: str, request_id: str) -> None:
        with self._lock:
            self._asked.pop((environment_id, request_id), None)

    # --- test controls ----------------------------------------------------------------------------

    def fail_next(
        self,
        operation: Operation,
        *,
        permanent: bool = True,
        message: str = "simulated failure",
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `operation` fail before doing anything."""
        error_type = PermanentBackendError if permanent else TransientBackendError
        with self._lock:
            self._scripted[operation].extend(error_type(message) for _ in range(times))

    def set_fault_rates(self, *, error_rate: float, lost_response_rate: float) -> None:
        """Change the random fault rates mid-run (a demo's network "recovers")."""
        _check_rates(error_rate, lost_response_rate)
        with self._lock:
            self._error_rate, self._lost_rate = error_rate, lost_response_rate

    def calls(self, operation: Operation) -> int:
        """How many times `operation` really ran (injected failures before it are not counted)."""
        with self._lock:
            return self._calls[operation]

    @property
    def creations(self) -> int:
        """How many compute resources were ever brought into existence."""
        with self._lock:
            return self._creations

    def received_secret_names(self, name: str) -> frozenset[str]:
        with self._lock:
            resource = self._resources.get(name)
            return frozenset(resource.spec.secure_environment) if resource else frozenset()

    def spec_of(self, name: str) -> ComputeSpec | None:
        """The spec a resource was last created or started with (in-process only)."""
        with self._lock:
            resource = self._resources.get(name)
            return resource.spec if resource else None

    # --- internals --------------------------------------------------------------------------------

    def _operate(self, operation: Operation, run: Callable[[], _T]) -> _T:
        if self._latency_seconds > 0:
            self._sleep(self._latency_seconds)  # outside the lock: slow calls overlap like real ones
        with self._lock:
            # Both draws happen on every call, so a seeded sequence does not depend on the outcome.
            fails_before = self._random.random() < self._error_rate
            loses_response = self._random.random() < self._lost_rate
            if self._scripted[operation]:
                raise self._scripted[operation].popleft()
            if fails_before:
                raise TransientBackendError(f"simulated transient failure on {operation}")
            result = run()
            self._calls[operation] += 1
            if loses_response:
                raise TransientBackendError(f"simulated lost response on {operation} (it was done)")
            return result

    def _view(self, resource: _Resource) -> ComputeStatus:
        name = resource.spec.name
        running = resource.state is ComputeState.RUNNING
        return ComputeStatus(
            name=name,
            state=resource.state,
            vs_code_url=f"https://{name}.{DOMAIN}/" if running else None,
            ssh_connection_string=f"ssh -p 2222 dev8@{name}.{DOMAIN}" if running else None,
            detail="simulated",
            environment_id=resource.spec.environment_id,
            phase=_phase(resource),
        )


def _phase(resource: _Resource) -> Phase | None:
    """As ACI reports it: the image is pulled on the first polls, the container then boots."""
    if resource.state is ComputeState.RUNNING:
        return Phase.IDE_ANSWERING
    if resource.state is not ComputeState.PENDING:
        return None
    return Phase.IMAGE_PULLING if resource.polls_left > 1 else Phase.CONTAINER_STARTED


def _refuse_broken(spec: ComputeSpec) -> None:
    if BROKEN_IMAGE_MARKER in spec.image:
        raise PermanentBackendError(f"simulated: image {spec.image!r} cannot be pulled")


def _check_rates(error_rate: float, lost_response_rate: float) -> None:
    for label, rate in (("error_rate", error_rate), ("lost_response_rate", lost_response_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{label} must be between 0 and 1")
