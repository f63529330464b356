"""The `aci` backend's operations over the ARM simulator: idempotency, state mapping and faults."""

from __future__ import annotations

import dataclasses

import pytest

from shared.adapters.compute.aci import AciCompute
from shared.domain.progress import Phase
from shared.domain.resources import ComputeState
from shared.errors import PermanentBackendError, TransientBackendError
from tests.azure.conftest import make_spec
from tests.azure.sim_arm import ArmSimulator

NAME = "dev8-1a2b3c4d"


def until_settled(aci: AciCompute, name: str = NAME, polls: int = 20):
    for _ in range(polls):
        status = aci.status(name)
        if status.state is not ComputeState.PENDING:
            return status
    raise AssertionError("still pending")


def test_create_returns_at_once_and_status_follows_the_instance_view(
    aci: AciCompute, arm: ArmSimulator
) -> None:
    created = aci.create(make_spec())
    assert created.state is ComputeState.PENDING and created.detail == "Creating"
    assert created.environment_id == "env-1a2b3c4d"
    assert arm.sleeps == []  # the create did not poll the long-running operation
    assert until_settled(aci).state is ComputeState.RUNNING


def test_status_reports_how_far_the_group_has_got_from_its_events(aci: AciCompute, arm: ArmSimulator) -> None:
    phases = [aci.create(make_spec()).phase]
    while (status := aci.status(NAME)).state is ComputeState.PENDING:
        phases.append(status.phase)
    phases.append(status.phase)
    seen = list(dict.fromkeys(phases))  # each phase once, in the order first seen
    assert seen == [Phase.COMPUTE_REQUESTED, Phase.IMAGE_PULLING, Phase.IDE_ANSWERING], phases


def test_a_group_whose_https_does_not_answer_yet_is_a_started_container(
    aci: AciCompute, arm: ArmSimulator
) -> None:
    arm.tls_broken.add(NAME)  # the sidecar has no certificate yet
    aci.create(make_spec())
    statuses = [aci.status(NAME) for _ in range(6)]
    assert statuses[-1].state is ComputeState.PENDING and statuses[-1].phase is Phase.CONTAINER_STARTED
    assert statuses[-1].detail.startswith("waiting for HTTPS")


def test_create_twice_with_the_same_spec_leaves_the_group_alone(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec())
    until_settled(aci)
    again = aci.create(make_spec())  # a fresh argon2 salt, yet the same spec hash
    assert again.state is ComputeState.RUNNING
    assert len(arm.of("PUT")) == 1 and arm.created == [NAME]


def test_a_different_spec_replaces_the_group(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec())
    first_hash = arm.stored(NAME)["tags"]["dev8-spec-hash"]
    aci.create(make_spec(cpu_cores=4.0, memory_gb=8.0))
    assert [r.method for r in arm.requests if "containerGroups/" in r.path and r.method != "GET"] == [
        "PUT",
        "DELETE",
        "PUT",
    ]
    assert arm.stored(NAME)["tags"]["dev8-spec-hash"] != first_hash
    assert arm.created == [NAME, NAME]  # deleted, then created again


def test_lost_put_response_then_retried_activity_makes_one_group(aci: AciCompute, arm: ArmSimulator) -> None:
    # The PUT is carried out but every answer to it is lost (the SDK's own retries included).
    arm.lose_next("PUT", "/containerGroups/", times=10)
    with pytest.raises(TransientBackendError, match="creating container group"):
        aci.create(make_spec())
    assert arm.created == [NAME]
    retried = aci.create(make_spec())  # the orchestration runs the activity again
    assert retried.state is ComputeState.PENDING
    assert arm.created == [NAME] and len(arm.groups) == 1
    assert until_settled(aci).state is ComputeState.RUNNING


def test_throttling_is_ridden_out_and_never_retried_early(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.throttle_next(4, retry_after=17)
    aci.create(make_spec())
    waits = arm.waits_after_throttling()
    assert len(waits) == 4
    assert all(passed >= asked for asked, passed in waits), waits
    assert arm.violations == []
    assert len(arm.of("PUT")) == 1


def test_a_throttling_storm_longer_than_the_retries_is_transient(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.throttle_next(50, retry_after=2)
    with pytest.raises(TransientBackendError, match="TooManyRequests"):
        aci.status(NAME)
    assert arm.violations == []


def test_quota_exhausted_is_a_clear_permanent_failure(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.extra_usage["StandardCores"] = 99
    with pytest.raises(PermanentBackendError) as failure:
        aci.create(make_spec())
    reason = str(failure.value)
    assert "quota reached in eastus" in reason and "99 of 100 cores" in reason and "needs 2" in reason
    assert arm.of("PUT") == []
    arm.extra_usage = {"ContainerGroups": 100, "StandardCores": 0}
    with pytest.raises(PermanentBackendError, match="100 of 100 container groups"):
        aci.create(make_spec())


def test_quota_refused_by_arm_itself_is_permanent(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.fail_next("PUT", "/containerGroups/", 409, "ContainerGroupQuotaReached", "quota reached")
    with pytest.raises(PermanentBackendError, match="ContainerGroupQuotaReached"):
        aci.create(make_spec())


def test_provisioning_failed_is_deleted_and_reported(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec(image="acrdev8sim.azurecr.io/dev8-broken:v42"))
    status = until_settled(aci)
    assert status.state is ComputeState.FAILED
    assert "Failed to pull image" in (status.detail or "")
    assert NAME not in arm.groups and len(arm.of("DELETE")) == 1
    assert aci.status(NAME).state is ComputeState.ABSENT


def test_stop_then_start_reads_the_fqdn_again(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec())
    running = until_settled(aci)
    stopped = aci.stop(NAME)
    assert stopped.state is ComputeState.STOPPED
    assert aci.status(NAME).state is ComputeState.STOPPED
    gets_before = len(arm.of("GET", NAME))
    started = aci.start(make_spec())
    assert started.state is ComputeState.PENDING
    assert len(arm.of("POST", "/start")) == 1
    assert len(arm.of("GET", NAME)) > gets_before  # read again after the start
    assert until_settled(aci).vs_code_url == running.vs_code_url
    assert aci.start(make_spec()).state is ComputeState.RUNNING  # again: nothing to do
    assert len(arm.of("POST", "/start")) == 1


def test_start_of_a_missing_group_creates_it(aci: AciCompute, arm: ArmSimulator) -> None:
    assert aci.start(make_spec()).state is ComputeState.PENDING
    assert arm.created == [NAME]


def test_stop_and_delete_of_a_missing_group_are_done(aci: AciCompute, arm: ArmSimulator) -> None:
    assert aci.stop(NAME).state is ComputeState.ABSENT
    aci.delete(NAME)
    arm.missing_delete_status = 204
    aci.delete(NAME)


@pytest.mark.parametrize("mode", ["async", "sync", "nocontent"])
def test_delete_in_every_arm_style(aci: AciCompute, arm: ArmSimulator, mode: str) -> None:
    arm.delete_mode = mode
    aci.create(make_spec())
    aci.delete(NAME)
    assert NAME not in arm.groups  # the async delete was polled to its end
    assert aci.status(NAME).state is ComputeState.ABSENT
    if mode == "async":
        assert len(arm.of("GET", "/operations/")) == 2 and arm.sleeps  # polled, waiting virtually


def test_conflict_while_transitioning_is_transient(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec())
    arm.fail_next("POST", "/stop", 409, "ContainerGroupTransitioning", times=1)
    with pytest.raises(TransientBackendError, match="ContainerGroupTransitioning"):
        aci.stop(NAME)
    assert aci.stop(NAME).state is ComputeState.STOPPED


def test_bad_request_and_forbidden_are_permanent(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.fail_next("PUT", "/containerGroups/", 400, "InvalidContainerGroupDefinition", "bad cpu")
    with pytest.raises(PermanentBackendError, match="InvalidContainerGroupDefinition"):
        aci.create(make_spec())
    arm.fail_next("GET", NAME, 403, "AuthorizationFailed", "no access")
    with pytest.raises(PermanentBackendError, match="AuthorizationFailed"):
        aci.status(NAME)


def test_server_errors_are_retried_by_the_sdk(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.fail_next("GET", NAME, 503, "ServiceUnavailable", times=2)
    assert aci.status(NAME).state is ComputeState.ABSENT
    assert len(arm.of("GET", NAME)) == 3
    # azure-core retries the first failure at once, then backs off exponentially.
    assert arm.sleeps == [2.0]


def test_list_finds_only_dev8_groups(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec())
    aci.create(make_spec("env-99999999"))
    foreign = dict(arm.stored(NAME), tags={"team": "other"})
    arm.groups["someone-elses"] = dataclasses.replace(arm.groups[NAME], body=foreign)
    listed = {status.name: status.environment_id for status in aci.list()}
    assert listed == {NAME: "env-1a2b3c4d", "dev8-99999999": "env-99999999"}


def test_quota_check_skipped_when_usage_cannot_be_read(aci: AciCompute, arm: ArmSimulator) -> None:
    arm.fail_next("GET", "/usages", 403, "AuthorizationFailed", "no usage reader role")
    assert aci.create(make_spec()).state is ComputeState.PENDING  # ARM would refuse a full region


def test_start_of_a_failed_group_replaces_it(aci: AciCompute, arm: ArmSimulator) -> None:
    aci.create(make_spec())
    arm.groups[NAME].phase = "failed"  # failed after it was created (seen before status() deleted it)
    arm.fail_provisioning[NAME] = "OOM killed"
    assert aci.start(make_spec()).state is ComputeState.PENDING
    assert arm.created == [NAME, NAME] and arm.groups[NAME].phase == "creating"


def test_a_start_with_new_resources_recreates_the_group_on_the_same_share(
    aci: AciCompute, arm: ArmSimulator
) -> None:
    # A group's CPU and memory cannot change in place (container-instances-update, "Properties
    # that require container delete"): a resized start replaces the group, the workspace kept.
    aci.create(make_spec())
    until_settled(aci)
    aci.stop(NAME)
    resized = make_spec(cpu_cores=4.0, memory_gb=8.0)
    assert aci.start(resized).state is ComputeState.PENDING
    assert arm.created == [NAME, NAME] and len(arm.of("DELETE", NAME)) == 1
    assert arm.of("POST", "/start") == []  # replaced, not started as it was
    requests = [
        c["properties"]["resources"]["requests"] for c in arm.groups[NAME].body["properties"]["containers"]
    ]
    assert round(sum(r["cpu"] for r in requests), 1) == 4.0  # the IDE's and the HTTPS sidecar's together
    assert round(sum(r["memoryInGB"] for r in requests), 1) == 8.0
    volumes = arm.groups[NAME].body["properties"]["volumes"]
    assert any(v.get("azureFile", {}).get("shareName") == "ws-1a2b3c4d" for v in volumes)
    assert until_settled(aci).state is ComputeState.RUNNING
