"""Monthly budgets over the in-memory records fake and a scripted clock: create and start refused
once the month's spend plus an hour would pass the budget, a token's own budget winning over the
deployment's; the sweep notes 80% once a month and stops what runs at 100%."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.environment import Actor, Policy, Status
from shared.domain.lifecycle import Command
from shared.errors import BudgetExceeded
from shared.services.ports import IndexEntry
from shared.services.sweeps import Sweeps
from tests.fakes import FixedClock, InMemoryRecords
from tests.services.test_environments import first_lookup_misses, make_service, request, run

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
HOURLY = 0.0614  # a small environment: 1 vCPU, 2 GB and 20 GB, an hour at the eastus prices


class StatusIndex:
    """Just enough of the SweepIndex port: every record of a status, from the fake's records."""

    def __init__(self, store: InMemoryRecords, owners: list[str]):
        self.store, self.owners = store, owners

    def candidates(self, status: Status, **_: Any) -> Iterator[IndexEntry]:
        for owner in self.owners:
            for env in self.store.list(owner):
                if env.status is status:
                    yield IndexEntry(status, owner, env.id, env.idle_stop_at, env.updated_at, env.started_at)


@pytest.fixture
def world() -> tuple[InMemoryRecords, FixedClock]:
    return InMemoryRecords(), FixedClock(T0)


def running(service: Any, owner: str = "alice", budget: float | None = None) -> str:
    env = service.create(owner, request(size="small"), None, budget).environment
    run(service, owner, env.id, Status.RUNNING)
    return str(env.id)


def test_create_and_start_are_refused_past_the_budget_and_a_token_budget_wins(world) -> None:
    store, clock = world
    service = make_service(store, clock, monthly_budget_per_user=0.10)
    first = running(service)
    clock.advance(hours=1)  # about 0.0614 spent: one more hour of a second one would pass 0.10
    with pytest.raises(BudgetExceeded) as refused:
        service.create("alice", request(size="small"), None)
    assert refused.value.details["budget"] == 0.10 and refused.value.details["month"] == "2026-12"
    assert "USD 0.10" in refused.value.message
    assert len(store.list("alice")) == 1  # nothing was written
    service.create("alice", request(size="small"), None, 1.00)  # the token's own budget: allowed
    service.command("alice", first, Command.STOP)
    run(service, "alice", first, Status.STOPPED)
    clock.advance(hours=1)  # the second one runs on
    with pytest.raises(BudgetExceeded):
        service.command("alice", first, Command.START)
    assert service.command("alice", first, Command.START, budget=5.0).accepted


def test_a_repeat_that_read_before_its_first_committed_gets_the_first_not_a_budget_refusal(
    world, monkeypatch
) -> None:
    store, clock = world
    service = make_service(store, clock, monthly_budget_per_user=0.10)
    first = service.create("alice", request(size="small"), "key-1").environment
    run(service, "alice", first.id, Status.RUNNING)
    clock.advance(hours=1)  # another hour of another one would pass the budget
    lookups = first_lookup_misses(store, monkeypatch)
    repeat = service.create("alice", request(size="small"), "key-1")
    assert (repeat.environment.id, repeat.accepted) == (first.id, False)
    assert lookups == ["key-1", "key-1"]
    with pytest.raises(BudgetExceeded):
        service.create("alice", request(size="small"), "key-2")


def test_no_budget_set_refuses_nothing(world) -> None:
    store, clock = world
    service = make_service(store, clock)
    running(service)
    clock.advance(days=20)
    assert service.create("alice", request(size="small"), None).accepted


def test_the_sweep_warns_at_80_percent_once_and_stops_at_100(world) -> None:
    store, clock = world
    service = make_service(store, clock, monthly_budget_per_user=1.00)
    env_id = running(service)
    other = running(service, owner="bob", budget=100.0)  # a budget of his own: untouched
    sweeps = Sweeps(
        store, service, clock, Policy(), index=StatusIndex(store, ["alice", "bob"]), monthly_budget=1.00
    )

    clock.advance(hours=10)  # about 0.61: under 80%
    assert sweeps.budgets().candidates == 0
    clock.advance(hours=3.5)  # about 0.83
    assert sweeps.budgets().candidates == 1
    sweeps.budgets()  # the same month: no second note
    notes = [e for e in service.events("alice", env_id) if e.actor is Actor.BUDGET]
    assert (
        len(notes) == 1
        and notes[0].reason.startswith("8")
        and "of the monthly budget used" in notes[0].reason
    )
    assert service.get("alice", env_id).status is Status.RUNNING

    clock.advance(hours=3)  # past 1.00
    report = sweeps.budgets()
    assert [r.environment.id for r in report.accepted] == [env_id]
    stopping = service.get("alice", env_id)
    assert stopping.status is Status.STOPPING and stopping.status_reason == "monthly budget reached"
    assert service.events("alice", env_id)[0].actor is Actor.BUDGET
    assert service.get("bob", other).status is Status.RUNNING  # bob's budget is his own


def test_a_token_budget_on_the_record_is_what_the_sweep_applies(world) -> None:
    store, clock = world
    service = make_service(store, clock, monthly_budget_per_user=1.00)
    env_id = running(service, budget=50.0)  # this user's token allows more
    sweeps = Sweeps(store, service, clock, Policy(), index=StatusIndex(store, ["alice"]), monthly_budget=1.00)
    clock.advance(hours=20)  # about 1.23: past the deployment's budget, far under the user's
    assert sweeps.budgets().accepted == []
    assert service.get("alice", env_id).status is Status.RUNNING


def test_a_budget_of_zero_allows_nothing_that_costs_and_wins_over_the_deployments(world) -> None:
    """A token claiming 0 means the user may spend nothing: not "no budget" (which would let them
    spend without limit), nor the deployment's budget."""
    store, clock = world
    service = make_service(store, clock, monthly_budget_per_user=100.0)
    with pytest.raises(BudgetExceeded) as refused:
        service.create("alice", request(size="small"), None, 0.0)
    assert refused.value.details == {"month": "2026-12", "spent": 0.0, "budget": 0.0}
    assert "USD 0.00" in refused.value.message
    assert store.list("alice") == []  # nothing was written
    env_id = running(service, budget=100.0)  # created under a roomier claim
    service.command("alice", env_id, Command.STOP)
    run(service, "alice", env_id, Status.STOPPED)
    with pytest.raises(BudgetExceeded):
        service.command("alice", env_id, Command.START, budget=0.0)
    assert service.get("alice", env_id).status is Status.STOPPED
