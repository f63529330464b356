"""Every (status, command) pair of the lifecycle, and every settle outcome."""

import pytest

from shared.domain.environment import Status
from shared.domain.lifecycle import ACTIVE, EDGES, TRANSITIONAL, Command, Verdict, can_move, decide, settle

S = Status
EXPECTED = {
    (S.CREATING, Command.START): (Verdict.REFUSED, None),
    (S.CREATING, Command.STOP): (Verdict.REFUSED, None),
    (S.CREATING, Command.DELETE): (Verdict.REFUSED, None),
    (S.STARTING, Command.START): (Verdict.REFUSED, None),
    (S.STARTING, Command.STOP): (Verdict.REFUSED, None),
    (S.STARTING, Command.DELETE): (Verdict.REFUSED, None),
    (S.RUNNING, Command.START): (Verdict.NOOP, S.RUNNING),
    (S.RUNNING, Command.STOP): (Verdict.TRANSITION, S.STOPPING),
    (S.RUNNING, Command.DELETE): (Verdict.TRANSITION, S.DELETING),
    (S.STOPPING, Command.START): (Verdict.REFUSED, None),
    (S.STOPPING, Command.STOP): (Verdict.REFUSED, None),
    (S.STOPPING, Command.DELETE): (Verdict.REFUSED, None),
    (S.STOPPED, Command.START): (Verdict.TRANSITION, S.STARTING),
    (S.STOPPED, Command.STOP): (Verdict.NOOP, S.STOPPED),
    (S.STOPPED, Command.DELETE): (Verdict.TRANSITION, S.DELETING),
    (S.ERROR, Command.START): (Verdict.TRANSITION, S.STARTING),
    (S.ERROR, Command.STOP): (Verdict.REFUSED, None),
    (S.ERROR, Command.DELETE): (Verdict.TRANSITION, S.DELETING),
    (S.DELETING, Command.START): (Verdict.REFUSED, None),
    (S.DELETING, Command.STOP): (Verdict.REFUSED, None),
    (S.DELETING, Command.DELETE): (Verdict.REFUSED, None),
    (S.DELETED, Command.START): (Verdict.REFUSED, None),
    (S.DELETED, Command.STOP): (Verdict.REFUSED, None),
    (S.DELETED, Command.DELETE): (Verdict.REFUSED, None),
}


def test_the_table_covers_every_pair():
    assert set(EXPECTED) == {(status, command) for status in Status for command in Command}


@pytest.mark.parametrize(("status", "command"), sorted(EXPECTED, key=str))
def test_decide(status, command):
    verdict, target = EXPECTED[(status, command)]
    decision = decide(status, command)
    assert (decision.verdict, decision.target) == (verdict, target)
    if verdict is Verdict.REFUSED:
        assert decision.reason  # a human reason for the 409
    if verdict is Verdict.TRANSITION:
        assert target in TRANSITIONAL and can_move(status, target)


def test_transitional_statuses_accept_no_command():
    for status in TRANSITIONAL:
        assert all(decide(status, command).verdict is Verdict.REFUSED for command in Command)
        assert "wait" in decide(status, Command.START).reason


@pytest.mark.parametrize("status", sorted(TRANSITIONAL))
def test_settle(status):
    expected = {S.CREATING: S.RUNNING, S.STARTING: S.RUNNING, S.STOPPING: S.STOPPED, S.DELETING: S.DELETED}
    assert settle(status, succeeded=True) is expected[status]
    assert settle(status, succeeded=False) is S.ERROR
    assert can_move(status, settle(status, True)) and can_move(status, S.ERROR)


@pytest.mark.parametrize("status", sorted(set(Status) - TRANSITIONAL))
def test_settle_refuses_stable_statuses(status):
    with pytest.raises(ValueError, match="not transitional"):
        settle(status, succeeded=True)


def test_edges():
    assert can_move(None, S.CREATING)
    assert not can_move(None, S.RUNNING)
    assert not any(can_move(S.DELETED, target) for target in Status if target is not S.DELETED)
    assert not can_move(S.STOPPED, S.RUNNING)  # only through STARTING
    assert not can_move(S.RUNNING, S.STOPPED)  # only through STOPPING
    for source, targets in EDGES.items():
        for target in Status:
            assert can_move(source, target) == (target is source or target in targets)


def test_active_statuses_hold_compute():
    assert {S.CREATING, S.STARTING, S.RUNNING} == ACTIVE
