"""Token buckets: a burst up to the budget, then the budget's pace; a refusal takes nothing."""

from __future__ import annotations

import pytest

from shared.domain.rate_limits import Budget, Limit
from shared.errors import RateLimited
from shared.services.rate_limits import MAX_KEYS, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_budget_then_one_per_refill():
    budget = Budget(per_minute=6)  # one token every 10 s
    bucket, waits = None, []
    for _ in range(8):
        bucket, wait = budget.take(bucket, 0.0)
        waits.append(wait)
    assert waits == [0] * 6 + [10, 10]
    bucket, wait = budget.take(bucket, 9.0)
    assert wait == 1  # 0.9 of a token: one more second
    bucket, wait = budget.take(bucket, 10.0)
    assert wait == 0
    bucket, wait = budget.take(bucket, 10.0)
    assert wait == 10


def test_budgets_are_per_key_and_per_limit():
    clock = Clock()
    limiter = RateLimiter({Limit.COMMAND: Budget(2), Limit.READ: Budget(3)}, clock)
    limiter.charge(Limit.COMMAND, "alice")
    limiter.charge(Limit.COMMAND, "alice")
    with pytest.raises(RateLimited) as refused:
        limiter.charge(Limit.COMMAND, "alice")
    assert refused.value.retry_after == 30 and refused.value.details["limit"] == "command"
    limiter.charge(Limit.COMMAND, "bob")  # another owner: untouched
    for _ in range(3):
        limiter.charge(Limit.READ, "alice")  # another budget: untouched
    clock.now += 30
    limiter.charge(Limit.COMMAND, "alice")  # refilled one


def test_memory_is_bounded_and_forgetting_only_forgives():
    clock = Clock()
    limiter = RateLimiter({Limit.AUTH_FAILURE: Budget(1)}, clock)
    limiter.charge(Limit.AUTH_FAILURE, "first")
    for n in range(MAX_KEYS):
        limiter.charge(Limit.AUTH_FAILURE, f"address-{n}")
    limiter.charge(Limit.AUTH_FAILURE, "first")  # forgotten (least recently seen): a fresh bucket
    with pytest.raises(RateLimited):
        limiter.charge(Limit.AUTH_FAILURE, f"address-{MAX_KEYS - 1}")
