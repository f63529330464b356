"""SimulatedCompute: idempotency, boot polls, seeded faults, lost responses, permanent failures, latency."""

from __future__ import annotations

import base64
import os
import threading

import pytest

from shared.adapters.compute.simulated import SimulatedCompute
from shared.domain.resources import ComputeState, compute_name
from shared.errors import BackendError, PermanentBackendError, TransientBackendError
from shared.services.ports import ComputeBackend, ComputeSpec, Workspace
from shared.settings import load_settings


def spec(environment_id: str = "env-0123456789abcdef", image: str = "dev8/node:latest") -> ComputeSpec:
    name = compute_name(environment_id)
    return ComputeSpec(
        name=name,
        environment_id=environment_id,
        owner="user-1",
        image=image,
        cpu_cores=2,
        memory_gb=4,
        ports=(8080, 2222),
        environment_variables={"EDITOR": "vim"},
        workspace=Workspace(name="ws-x", location="/tmp/ws-x", quota_gb=50),
        secure_environment={"PASSWORD": "hunter2-secret", "GITHUB_TOKEN": "ghp_secret"},
    )


def poll_until_running(compute: SimulatedCompute, name: str, limit: int = 20) -> int:
    for polls in range(1, limit + 1):
        if compute.status(name).state is ComputeState.RUNNING:
            return polls
    raise AssertionError("never reached RUNNING")


def test_is_a_compute_backend() -> None:
    compute: ComputeBackend = SimulatedCompute()
    assert compute.list() == []


def test_create_then_running_after_boot_polls() -> None:
    compute = SimulatedCompute(boot_polls=3)
    created = compute.create(spec())
    assert created.state is ComputeState.PENDING
    assert created.vs_code_url is None
    states = [compute.status(created.name).state for _ in range(4)]
    assert states == [ComputeState.PENDING] * 3 + [ComputeState.RUNNING]
    running = compute.status(created.name)
    assert running.vs_code_url == f"https://{created.name}.simulated.dev8.local/"
    assert running.ssh_connection_string == f"ssh -p 2222 dev8@{created.name}.simulated.dev8.local"
    assert running.environment_id == "env-0123456789abcdef"


def test_zero_boot_polls_runs_at_first_poll() -> None:
    compute = SimulatedCompute(boot_polls=0)
    name = compute.create(spec()).name
    assert compute.status(name).state is ComputeState.RUNNING


def test_create_is_idempotent() -> None:
    compute = SimulatedCompute(boot_polls=0)
    first = compute.create(spec())
    compute.status(first.name)
    again = compute.create(spec())
    assert again.state is ComputeState.RUNNING  # the current status, not a fresh PENDING resource
    assert compute.creations == 1
    assert len(compute.list()) == 1


def test_stop_start_cycle() -> None:
    compute = SimulatedCompute(boot_polls=1)
    name = compute.create(spec()).name
    poll_until_running(compute, name)
    stopped = compute.stop(name)
    assert stopped.state is ComputeState.STOPPED
    assert stopped.vs_code_url is None
    assert compute.status(name).state is ComputeState.STOPPED
    assert compute.start(spec()).state is ComputeState.PENDING
    assert poll_until_running(compute, name) == 2
    assert compute.creations == 1


def test_repeated_start_does_not_reboot() -> None:
    compute = SimulatedCompute(boot_polls=0)
    name = compute.create(spec()).name
    poll_until_running(compute, name)
    assert compute.start(spec()).state is ComputeState.RUNNING


def test_start_of_a_vanished_resource_recreates_it() -> None:
    compute = SimulatedCompute(boot_polls=0)
    assert compute.start(spec()).state is ComputeState.PENDING
    assert compute.creations == 1


def test_unknown_name_is_absent_and_delete_of_absent_is_fine() -> None:
    compute = SimulatedCompute()
    assert compute.status("dev8-nothing").state is ComputeState.ABSENT
    assert compute.stop("dev8-nothing").state is ComputeState.ABSENT
    compute.delete("dev8-nothing")
    assert compute.list() == []


def test_delete_removes() -> None:
    compute = SimulatedCompute()
    name = compute.create(spec()).name
    compute.delete(name)
    compute.delete(name)
    assert compute.status(name).state is ComputeState.ABSENT
    assert compute.calls("delete") == 2


def test_list_returns_all() -> None:
    compute = SimulatedCompute()
    ids = [f"env-{index:016x}" for index in range(3)]
    for environment_id in ids:
        compute.create(spec(environment_id))
    assert sorted(status.environment_id or "" for status in compute.list()) == sorted(ids)


def test_secrets_reach_the_backend_by_name() -> None:
    compute = SimulatedCompute()
    name = compute.create(spec()).name
    assert compute.received_secret_names(name) == {"PASSWORD", "GITHUB_TOKEN"}
    assert compute.received_secret_names("dev8-other") == frozenset()
    received = compute.spec_of(name)
    assert received is not None and received.secure_environment["PASSWORD"] == "hunter2-secret"
    assert "hunter2-secret" not in repr(received)
    assert all("hunter2-secret" not in repr(status) for status in compute.list())


def fault_sequence(compute: SimulatedCompute, count: int = 200) -> list[str]:
    outcomes = []
    for index in range(count):
        try:
            compute.create(spec(f"env-{index:016x}"))
            outcomes.append("ok")
        except TransientBackendError as error:
            outcomes.append(str(error))
    return outcomes


def test_same_seed_gives_the_same_faults() -> None:
    first = fault_sequence(SimulatedCompute(error_rate=0.3, lost_response_rate=0.2, seed=42))
    second = fault_sequence(SimulatedCompute(error_rate=0.3, lost_response_rate=0.2, seed=42))
    other = fault_sequence(SimulatedCompute(error_rate=0.3, lost_response_rate=0.2, seed=7))
    assert first == second
    assert first != other
    assert {"ok", "simulated transient failure on create"} <= set(first)
    assert "simulated lost response on create (it was done)" in first


def test_error_rate_is_roughly_respected() -> None:
    compute = SimulatedCompute(error_rate=0.2, seed=1)
    outcomes = fault_sequence(compute, 2000)
    failures = sum(outcome != "ok" for outcome in outcomes)
    assert 300 <= failures <= 500
    assert compute.creations == 2000 - failures  # a failure before the operation made nothing


def test_lost_response_leaves_the_resource_and_a_retry_returns_it() -> None:
    compute = SimulatedCompute(lost_response_rate=1.0, boot_polls=0)
    with pytest.raises(TransientBackendError, match="lost response"):
        compute.create(spec())
    assert compute.creations == 1
    compute.set_fault_rates(error_rate=0.0, lost_response_rate=0.0)  # the network recovers
    retried = compute.create(spec())
    assert retried.name == compute_name("env-0123456789abcdef")
    assert compute.creations == 1
    assert len(compute.list()) == 1
    assert compute.calls("create") == 2


def test_error_before_the_operation_does_nothing() -> None:
    compute = SimulatedCompute(error_rate=1.0)
    with pytest.raises(TransientBackendError):
        compute.create(spec())
    assert compute.creations == 0
    assert compute.calls("create") == 0


def test_broken_image_fails_permanently() -> None:
    compute = SimulatedCompute()
    with pytest.raises(PermanentBackendError) as caught:
        compute.create(spec(image="dev8/broken:latest"))
    assert caught.value.transient is False
    assert compute.list() == []


def test_fail_next_permanent_then_recovers() -> None:
    compute = SimulatedCompute()
    compute.fail_next("create", permanent=True, message="quota exhausted in region")
    with pytest.raises(PermanentBackendError, match="quota exhausted"):
        compute.create(spec())
    assert compute.create(spec()).state is ComputeState.PENDING
    assert compute.creations == 1


def test_fail_next_transient_several_times_only_on_that_operation() -> None:
    compute = SimulatedCompute()
    name = compute.create(spec()).name
    compute.fail_next("stop", permanent=False, times=2)
    assert compute.status(name).state is ComputeState.PENDING
    for _ in range(2):
        with pytest.raises(BackendError) as caught:
            compute.stop(name)
        assert caught.value.transient is True
    assert compute.stop(name).state is ComputeState.STOPPED


def test_latency_uses_the_injected_sleep() -> None:
    naps: list[float] = []
    compute = SimulatedCompute(latency_ms=250, sleep=naps.append)
    name = compute.create(spec()).name
    compute.status(name)
    compute.delete(name)
    assert naps == [0.25, 0.25, 0.25]


def test_no_latency_never_sleeps() -> None:
    naps: list[float] = []
    SimulatedCompute(sleep=naps.append).create(spec())
    assert naps == []


def test_concurrent_creates_make_one_resource() -> None:
    compute = SimulatedCompute()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        compute.create(spec())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert compute.creations == 1
    assert compute.calls("create") == 8


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("DEV8_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DEV8_JWT_SECRET", "s" * 32)
    monkeypatch.setenv("DEV8_TABLES_CONNECTION", "UseDevelopmentStorage=true")
    monkeypatch.setenv("DEV8_SECRETS_KEY", base64.b64encode(bytes(32)).decode())
    monkeypatch.setenv("DEV8_SIMULATED_LATENCY_MS", "40")
    monkeypatch.setenv("DEV8_SIMULATED_BOOT_POLLS", "2")
    monkeypatch.setenv("DEV8_SIMULATED_ERROR_RATE", "0.5")
    monkeypatch.setenv("DEV8_SIMULATED_SEED", "3")
    naps: list[float] = []
    compute = SimulatedCompute.from_settings(load_settings(), sleep=naps.append)
    twin = SimulatedCompute(error_rate=0.5, seed=3, sleep=naps.append)
    assert fault_sequence(compute, 30) == fault_sequence(twin, 30)
    assert naps.count(0.04) == 30
    quiet_settings = load_settings().model_copy(update={"simulated_error_rate": 0.0})
    quiet = SimulatedCompute.from_settings(quiet_settings, sleep=naps.append)
    name = quiet.create(spec()).name
    assert [quiet.status(name).state for _ in range(3)] == [ComputeState.PENDING] * 2 + [ComputeState.RUNNING]


def test_invalid_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        SimulatedCompute(error_rate=1.5)
