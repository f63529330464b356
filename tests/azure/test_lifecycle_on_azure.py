"""The real lifecycle orchestrations (provision, stop, start, delete) through devhost's Durable
engine, with settings naming the production backends (DEV8_COMPUTE_BACKEND=aci,
DEV8_WORKSPACE_BACKEND=azurefiles) and those adapters built from those settings with the ARM and
Azure Files simulators as their transports. The simulators' clock is the engine's manual clock
plus the time the SDKs slept, so durable timers and SDK waits both count as time passing."""

from __future__ import annotations

import functools
import itertools
import json

import pytest
from argon2 import PasswordHasher
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from devhost.host.durable.clock import ManualClock
from devhost.host.durable.engine import DurableEngine, RuntimeStatus
from shared import wiring
from shared.adapters.compute.aci import AciCompute
from shared.adapters.workspaces.azurefiles import AzureFilesWorkspaces
from shared.domain import operation
from shared.domain.environment import Status
from shared.domain.lifecycle import Command
from shared.domain.resources import compute_name, workspace_name
from shared.settings import get_settings
from tests.azure.conftest import (
    ACCOUNT,
    PULL_IDENTITY,
    REGISTRY,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    FakeCredential,
)
from tests.azure.sim_arm import ArmSimulator
from tests.azure.sim_files import FilesSimulator
from tests.replay.test_lifecycle_orchestrations import OWNER, T0, command, create, engine_for, launch, run

GITHUB_TOKEN = "token-from-the-user-secrets-0042"


class Azure:
    def __init__(self, clock: ManualClock) -> None:
        now = lambda: clock.now().timestamp()  # noqa: E731
        self.arm = ArmSimulator(SUBSCRIPTION, RESOURCE_GROUP, seed=11, clock=now)
        self.files = FilesSimulator(ACCOUNT, seed=11, clock=now)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def azure(app_env: pytest.MonkeyPatch, clock: ManualClock) -> Azure:
    for name, value in {
        "DEV8_COMPUTE_BACKEND": "aci",
        "DEV8_WORKSPACE_BACKEND": "azurefiles",
        "DEV8_AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "DEV8_AZURE_RESOURCE_GROUP": RESOURCE_GROUP,
        "DEV8_AZURE_LOCATION": "eastus",
        "DEV8_WORKSPACE_STORAGE_ACCOUNT": ACCOUNT,
        "DEV8_REGISTRY": REGISTRY,
        "DEV8_IMAGE_TAG": "v42",
        "DEV8_REGISTRY_IDENTITY_ID": PULL_IDENTITY,
    }.items():
        app_env.setenv(name, value)
    wiring.reset()
    sims = Azure(clock)
    settings = get_settings()
    credential = FakeCredential()
    compute = AciCompute.from_settings(
        settings, credential=credential, transport=sims.arm, https_probe=sims.arm.https_answers
    )
    shares = AzureFilesWorkspaces.from_settings(
        settings, credential=credential, arm_transport=sims.arm, transport=sims.files, sleep=sims.files.sleep
    )
    # The composition root's caches, pointed at these adapters (wiring.reset() still works on them).
    app_env.setattr(wiring, "compute", functools.lru_cache(maxsize=1)(lambda: compute))
    app_env.setattr(wiring, "workspaces", functools.lru_cache(maxsize=1)(lambda: shares))
    return sims


@pytest.fixture
def engine(azure: Azure, clock: ManualClock) -> DurableEngine:
    return engine_for(clock)


def provision(engine: DurableEngine, clock: ManualClock, **fields):
    env = create(**fields)
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.runtime_status is RuntimeStatus.COMPLETED
    return env, status


def test_provision_stop_start_delete_over_aci_and_azure_files(engine, clock, azure: Azure) -> None:
    env, status = provision(engine, clock, secrets={"GITHUB_TOKEN": GITHUB_TOKEN})
    assert status.output == {"status": "RUNNING"}
    name = compute_name(env.id)
    fqdn = azure.arm.fqdn(name)
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.RUNNING
    assert record.vs_code_url == f"https://{fqdn}/"
    assert record.ssh_connection_string == f"ssh -p 2222 dev8@{fqdn}"
    assert azure.arm.created == [name]
    share = azure.files.shares[workspace_name(env.id)]
    assert share.quota == env.storage_gb
    # The group mounts exactly that share; the secrets went as secure values, the password hashed.
    body = azure.arm.stored(name)
    assert body["properties"]["volumes"][0]["azureFile"]["shareName"] == workspace_name(env.id)
    variables = {
        v["name"]: v for v in body["properties"]["containers"][0]["properties"]["environmentVariables"]
    }
    assert variables["GITHUB_TOKEN"] == {"name": "GITHUB_TOKEN", "secureValue": GITHUB_TOKEN}
    password = wiring.environments().secure_environment(record)["PASSWORD"]
    assert PasswordHasher().verify(variables["HASHED_PASSWORD"]["secureValue"], password)
    for request in azure.arm.requests + azure.files.requests:
        assert password not in request.raw.decode() + request.url
    assert GITHUB_TOKEN not in json.dumps(engine.status(env.operation).history)

    command(engine, clock, env.id, Command.STOP)
    assert wiring.environments().get(OWNER, env.id).status is Status.STOPPED
    assert azure.arm.groups[name].phase == "stopped"

    azure.files.write(workspace_name(env.id), "notes.txt", b"keep me")
    command(engine, clock, env.id, Command.START)
    started = wiring.environments().get(OWNER, env.id)
    assert started.status is Status.RUNNING and started.vs_code_url == f"https://{fqdn}/"
    assert len(azure.arm.of("POST", "/start")) == 1 and azure.arm.created == [name]  # started, not re-created
    assert azure.files.shares[workspace_name(env.id)].tree.files["notes.txt"] == b"keep me"

    command(engine, clock, env.id, Command.DELETE)
    assert wiring.store().get(OWNER, env.id).status is Status.DELETED
    assert name not in azure.arm.groups
    assert workspace_name(env.id) not in azure.files.shares
    assert wiring.environments().list(OWNER) == []


def test_a_429_storm_still_completes_and_never_retries_early(engine, clock, azure: Azure) -> None:
    azure.arm.throttle_rate, azure.arm.retry_after = 0.35, 7
    # Azure Storage throttles with 503 ServerBusy (no Retry-After): the Files client backs off.
    azure.files.failure_rate = 0.5
    env, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}
    for what in (Command.STOP, Command.START, Command.DELETE):
        command(engine, clock, env.id, what)
    assert wiring.store().get(OWNER, env.id).status is Status.DELETED
    arm_waits = azure.arm.waits_after_throttling()
    assert len(arm_waits) >= 5, "the storm should have hit ARM several times"
    assert all(passed >= asked for asked, passed in arm_waits), arm_waits
    assert 503 in [r.status for r in azure.files.requests] and azure.files.sleeps
    assert azure.arm.violations == [] and azure.files.violations == []
    assert azure.arm.created == [compute_name(env.id)]


def test_a_lost_put_response_then_a_retried_activity_makes_one_group(engine, clock, azure: Azure) -> None:
    azure.arm.lose_next("PUT", "/containerGroups/", times=10)  # more than the SDK's own retries
    env, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}
    assert azure.arm.created == [compute_name(env.id)] and len(azure.arm.groups) == 1
    history = engine.status(env.operation).history
    scheduled = [
        e
        for e in history
        if e.get("Name") == "create_compute" and e["EventType"] == HistoryEventType.TASK_SCHEDULED
    ]
    assert len(scheduled) == 2  # the activity failed (transient) and was run again


def test_quota_exhausted_ends_in_error_with_a_clear_reason(engine, clock, azure: Azure) -> None:
    azure.arm.extra_usage["ContainerGroups"] = 100
    env, status = provision(engine, clock)
    assert status.output["status"] == "ERROR"
    reason = wiring.environments().get(OWNER, env.id).status_reason
    assert reason.startswith("Azure Container Instances quota reached in eastus: 100 of 100 container groups")
    assert azure.arm.of("PUT") == []
    assert workspace_name(env.id) in azure.files.shares  # the workspace is kept


def test_provisioning_failed_is_deleted_and_reported(engine, clock, azure: Azure) -> None:
    env = create()
    azure.arm.fail_provisioning[compute_name(env.id)] = "Failed to mount Azure File Volume"
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output["status"] == "ERROR"
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.ERROR
    assert "Failed to mount Azure File Volume" in record.status_reason
    assert compute_name(env.id) not in azure.arm.groups
    assert len(azure.arm.of("DELETE", compute_name(env.id))) >= 1


NEW_KEY = "cm90YXRlZC1zdG9yYWdlLWFjY291bnQta2V5LWZvci10ZXN0cw=="


def test_a_rotated_storage_key_still_mounts_new_and_restarted_groups(engine, clock, azure: Azure) -> None:
    """One key cache serves both adapters: after a rotation, the Files data plane refuses the old
    key, the cache is dropped, and both the next create and the next start mount with the new one
    (a stopped group keeps the key it was created with, so the start replaces it)."""
    first, _ = provision(engine, clock)
    command(engine, clock, first.id, Command.STOP)
    azure.arm.rotate_key(NEW_KEY)
    azure.files.rotate_key(NEW_KEY)
    lists_before = len(azure.arm.of("POST", "/listKeys"))

    second, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}
    assert 403 in [r.status for r in azure.files.requests]  # the old key was refused once
    assert len(azure.arm.of("POST", "/listKeys")) == lists_before + 1  # listed again, once, for both
    command(engine, clock, first.id, Command.START)
    assert wiring.environments().get(OWNER, first.id).status is Status.RUNNING
    for env in (first, second):
        volume = azure.arm.stored(compute_name(env.id))["properties"]["volumes"][0]["azureFile"]
        assert volume["storageAccountKey"] == NEW_KEY
        assert azure.arm.groups[compute_name(env.id)].phase == "running"


def test_a_failed_mount_reported_as_a_normal_event_reaches_the_user(engine, clock, azure: Azure) -> None:
    """ACI reports FailedMount with type Normal: the reason still names it, and the key is dropped
    so the next attempt lists it again."""
    env, _ = provision(engine, clock)
    command(engine, clock, env.id, Command.STOP)
    azure.arm.rotate_key(NEW_KEY)  # ARM has the new key, but this process still holds the old one
    lists_before = len(azure.arm.of("POST", "/listKeys"))
    azure.arm.groups[compute_name(env.id)].body["properties"]["volumes"][0]["azureFile"][
        "storageAccountKey"
    ] = "c3RhbGU="
    azure.arm.groups[compute_name(env.id)].body["tags"]["dev8-spec-hash"] = "stale-so-start-reuses-nothing"
    wiring.compute()._storage_key._key = "c3RhbGU="  # the cache still holds the rotated-out key
    azure.files.rotate_key("c3RhbGU=")  # and Files has not noticed yet either
    command(engine, clock, env.id, Command.START)
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.ERROR
    assert "FailedMount" in record.status_reason
    assert wiring.compute()._storage_key._key is None  # forgotten: the next attempt lists it again
    azure.files.rotate_key(NEW_KEY)
    command(engine, clock, env.id, Command.START)
    assert wiring.environments().get(OWNER, env.id).status is Status.RUNNING
    assert len(azure.arm.of("POST", "/listKeys")) == lists_before + 1


def test_a_90_second_provision_polls_arm_at_most_15_times(engine, clock, azure: Azure) -> None:
    """Status polls back off (3 s doubling to 30 s): each is a GET on ARM, an activity and a timer
    in the history that every replay walks again. The create's answer is the first look, so the
    first poll comes 3 s after it (it came at once, asking ARM what the create had just said)."""
    azure.arm.boot_seconds = 90
    env, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}
    reads = azure.arm.of("GET", f"/containerGroups/{compute_name(env.id)}")
    history = engine.status(env.operation).history
    timers = [e for e in history if e["EventType"] == HistoryEventType.TIMER_CREATED]
    print(f"90 s provision: {len(reads)} status reads, {len(timers)} timers, {len(history)} history events")
    assert len(reads) <= 7  # 8 when the first poll came at once
    # The first read is create's own look for an existing group, just before its PUT.
    assert [round(b.at - a.at) for a, b in itertools.pairwise(reads)][:4] == [3, 6, 12, 24]


def test_authorization_refused_right_after_a_deploy_is_tried_again(engine, clock, azure: Azure) -> None:
    """403 AuthorizationFailed while role assignments propagate: the step is tried again after a
    durable wait, and the environment comes up."""
    azure.arm.fail_next("PUT", "/containerGroups/", 403, "AuthorizationFailed", times=3)
    env, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}
    assert len(azure.arm.of("PUT", "/containerGroups/")) == 4
    assert azure.arm.created == [compute_name(env.id)]


def test_authorization_still_refused_after_the_grace_period_fails_with_a_reason(
    engine, clock, azure: Azure
) -> None:
    azure.arm.fail_next("PUT", "/containerGroups/", 403, "AuthorizationFailed", times=1000)
    env, status = provision(engine, clock)
    assert status.output["status"] == "ERROR"
    reason = wiring.environments().get(OWNER, env.id).status_reason
    assert "AuthorizationFailed" in reason and "still refused after 10 minutes" in reason
    assert "role assignments" in reason
    puts = azure.arm.of("PUT", "/containerGroups/")
    assert 5 <= len(puts) <= 12  # a bounded number of tries, spread over ten minutes
    assert puts[-1].at - puts[0].at >= 600


def test_an_unregistered_provider_fails_at_once_with_what_to_run(engine, clock, azure: Azure) -> None:
    azure.arm.fail_next(
        "PUT",
        "/containerGroups/",
        409,
        "MissingSubscriptionRegistration",
        "The subscription is not registered to use namespace 'Microsoft.ContainerInstance'.",
    )
    env, status = provision(engine, clock)
    assert status.output["status"] == "ERROR"
    reason = wiring.environments().get(OWNER, env.id).status_reason
    assert "az provider register --namespace Microsoft.ContainerInstance" in reason
    assert len(azure.arm.of("PUT", "/containerGroups/")) == 1  # not retried: it cannot succeed


def test_a_409_about_quota_is_permanent_but_one_about_capacity_is_retried(
    engine, clock, azure: Azure
) -> None:
    quota = "The container group quota 'ContainerGroups' exceeded for region 'eastus'."
    azure.arm.fail_next("PUT", "/containerGroups/", 409, "ServiceUnavailable", quota)
    env, status = provision(engine, clock)
    assert status.output["status"] == "ERROR"
    assert "quota is full" in wiring.environments().get(OWNER, env.id).status_reason
    assert len(azure.arm.of("PUT", "/containerGroups/")) == 1

    capacity = "The requested resource is not available in the location 'eastus' at this moment."
    azure.arm.fail_next("PUT", "/containerGroups/", 409, "ServiceUnavailable", capacity, times=2)
    _, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}


def test_running_only_once_the_ide_answers_over_https(engine, clock, azure: Azure) -> None:
    env, status = provision(engine, clock)
    assert status.output == {"status": "RUNNING"}
    url = f"https://{azure.arm.fqdn(compute_name(env.id))}/"
    assert azure.arm.https_probes and set(azure.arm.https_probes) == {url}


def test_a_sidecar_that_never_serves_https_ends_in_error_not_running(engine, clock, azure: Azure) -> None:
    env = create()
    azure.arm.tls_broken.add(compute_name(env.id))
    status = run(engine, clock, launch(engine, operation.PROVISION, env))
    assert status.output["status"] == "ERROR"
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.ERROR and record.vs_code_url is None
    assert "was not running after" in record.status_reason and "waiting for HTTPS" in record.status_reason
    assert compute_name(env.id) not in azure.arm.groups  # compensated: it does not keep billing


# --- the stop hand-off through the share (issue 11) --------------------------------------------------


def events_of_record(env_id: str) -> list[tuple[str, str, str]]:
    return [(e.from_status, e.to_status, e.reason) for e in wiring.store().events(OWNER, env_id)]


def test_a_stop_asks_the_container_through_its_share_and_records_its_final_snapshot(
    engine, clock, azure: Azure
) -> None:
    env, _ = provision(engine, clock)
    name, share = compute_name(env.id), workspace_name(env.id)
    body = azure.arm.stored(name)
    container = body["properties"]["containers"][0]["properties"]
    variables = {v["name"]: v.get("value") for v in container["environmentVariables"]}
    # The agent is told where the mailbox is: the share, mounted apart from the working tree.
    assert variables["DEV8_SNAPSHOT_CONTROL"] == "/dev8/share/control"
    assert variables["DEV8_SNAPSHOT_REPORT_URL"].endswith(f"/api/v1/environments/{env.id}/snapshots/report")
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/dev8/share"}

    stopping = wiring.environments().command(OWNER, env.id, Command.STOP).environment
    instance = launch(engine, operation.STOP, stopping)
    engine.run_until_idle()  # asked; waiting on a durable timer for the answer
    request = f"control/{stopping.operation}.request"
    assert azure.files.shares[share].tree.files == {request: b"stop"}
    assert azure.arm.groups[name].phase != "stopped"  # nothing is stopped before the answer
    # The container's agent answers on its mounted share.
    azure.files.write(
        share,
        f"control/{stopping.operation}.answer",
        b'{"event":"snapshot","id":"5eed5eed","taken_at":"2026-11-21T09:01:00Z","reason":"stop",'
        b'"files":1200,"bytes_added":4096}\n',
    )
    assert run(engine, clock, instance).runtime_status is RuntimeStatus.COMPLETED
    assert azure.arm.groups[name].phase == "stopped"
    assert events_of_record(env.id)[1] == (
        Status.STOPPING,
        Status.STOPPING,
        "final snapshot 5eed5eed taken (1200 files, 4096 bytes added)",
    )
    assert not [path for path in azure.files.shares[share].tree.files if path.startswith("control/")]
    assert [s.id for s in wiring.snapshots().list(OWNER, env.id)] == ["5eed5eed"]


def test_a_container_that_never_answers_is_stopped_at_the_deadline_with_few_polls(
    engine, clock, azure: Azure
) -> None:
    env, _ = provision(engine, clock)
    stopping = wiring.environments().command(OWNER, env.id, Command.STOP).environment
    started = clock.now()
    status = run(engine, clock, launch(engine, operation.STOP, stopping))
    assert status.runtime_status is RuntimeStatus.COMPLETED
    limit = get_settings().snapshot_stop_wait_seconds
    assert (clock.now() - started).total_seconds() >= limit
    record = wiring.environments().get(OWNER, env.id)
    assert record.status is Status.STOPPED
    assert record.unclean_stop == f"the workspace did not answer within {limit} s; no snapshot was ever taken"
    # Polls back off to one every 5 s: a bounded history, and bounded reads of the share.
    timers = sum(
        1 for e in engine.status(stopping.operation).history if e["EventType"] == HistoryEventType.TIMER_FIRED
    )
    assert timers <= limit / 5 + 4
    reads = [r for r in azure.files.requests if r.method == "GET" and r.path.endswith(".answer")]
    assert len(reads) <= limit / 5 + 5


def test_container_logs_come_from_arm_for_either_container(engine, clock, azure: Azure) -> None:
    env, _ = provision(engine, clock)
    name = compute_name(env.id)
    azure.arm.container_logs[(name, "workspace")] = "\n".join(f"line {n}" for n in range(10))
    azure.arm.container_logs[(name, "tls")] = "certificate obtained"
    from shared.domain.logs import LogSource

    assert wiring.compute().logs(name, LogSource.IDE, 3) == "line 7\nline 8\nline 9"
    assert wiring.compute().logs(name, LogSource.TLS, 50) == "certificate obtained"
    (request,) = [r for r in azure.arm.requests if r.path.endswith("/containers/workspace/logs")]
    assert request.query["tail"] == "3"
    assert (
        wiring.compute().logs(compute_name("env-00000000000000ff"), LogSource.IDE, 3) == ""
    )  # no such group
