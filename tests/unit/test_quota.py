import pytest

from api.errors import status_of
from shared.domain.environment import Status
from shared.domain.quota import Limits, Usage, admit
from shared.errors import QuotaExceeded

LIMITS = Limits(max_environments=2, max_active=1)


def test_usage_follows_moves():
    usage = Usage()
    usage = usage.after(None, Status.CREATING)
    assert usage == Usage(1, 1)
    usage = usage.after(Status.CREATING, Status.RUNNING)
    assert usage == Usage(1, 1)
    usage = usage.after(Status.RUNNING, Status.STOPPING)
    assert usage == Usage(1, 0)
    usage = usage.after(Status.STOPPING, Status.STOPPED).after(Status.STOPPED, Status.DELETING)
    assert usage == Usage(1, 0)
    assert usage.after(Status.DELETING, Status.DELETED) == Usage(0, 0)
    assert Usage(1, 1).after(Status.CREATING, Status.ERROR) == Usage(1, 0)


def test_admit_refuses_a_new_environment_past_the_limit():
    assert admit(Usage(1, 0), None, Status.CREATING, Limits(2, 5)) == Usage(2, 1)
    with pytest.raises(QuotaExceeded) as refused:
        admit(Usage(2, 0), None, Status.CREATING, Limits(2, 5))
    assert status_of(refused.value) == (403, "QUOTA_EXCEEDED")


def test_admit_refuses_a_start_past_the_running_limit():
    with pytest.raises(QuotaExceeded, match="at once"):
        admit(Usage(2, 1), Status.STOPPED, Status.STARTING, LIMITS)
    assert admit(Usage(2, 0), Status.STOPPED, Status.STARTING, LIMITS) == Usage(2, 1)


def test_shrinking_is_always_admitted_even_above_a_lowered_limit():
    over = Usage(5, 4)
    assert admit(over, Status.RUNNING, Status.STOPPING, LIMITS) == Usage(5, 3)
    assert admit(over, Status.DELETING, Status.DELETED, LIMITS) == Usage(4, 4)
    assert admit(over, Status.CREATING, Status.RUNNING, LIMITS) == over
