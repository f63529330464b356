"""Rate limits as token buckets: a budget of N per minute is a bucket of N tokens refilled at N/60
a second, so a client may burst up to N and then goes at the budget's pace. Pure: the caller keeps
the buckets and passes the time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Limit(StrEnum):
    COMMAND = "command"  # create, change, start, stop, delete, restore, snapshot, export, logs: per owner
    READ = "read"  # everything else an owner asks: per owner
    AUTH_FAILURE = "auth-failure"  # requests that fail authentication: per client address
    AGENT = "agent"  # an environment's own agent's reports: per environment


# The agents are the product's own (docker/base: activity about once a minute, a snapshot list
# every two), so their budget is the product's too, not a setting: ample for them, a bound on
# the table writes a workspace can make with its token. Not the owner's reads: a frontend that
# spends those must not silence the heartbeat that keeps its environment from an idle stop.
AGENT_REPORTS_PER_MINUTE = 30


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float  # seconds, on the caller's monotonic clock


@dataclass(frozen=True, slots=True)
class Budget:
    per_minute: int

    def take(self, bucket: Bucket | None, now: float) -> tuple[Bucket, int]:
        """The bucket after one request at `now`, and 0 when it may go, else how many whole
        seconds until it may (for Retry-After). A refused request takes nothing."""
        capacity = float(self.per_minute)
        rate = capacity / 60.0
        tokens = capacity if bucket is None else min(capacity, bucket.tokens + (now - bucket.at) * rate)
        if tokens >= 1.0:
            return Bucket(tokens - 1.0, now), 0
        return Bucket(tokens, now), max(1, math.ceil((1.0 - tokens) / rate))
