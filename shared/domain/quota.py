"""Quota rules over an owner's counters. Pure: the store keeps the counters exact under races."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.environment import Status
from shared.domain.lifecycle import ACTIVE
from shared.errors import QuotaExceeded


@dataclass(frozen=True, slots=True)
class Usage:
    """How many of an owner's environments exist (not DELETED) and hold compute (ACTIVE)."""

    environments: int = 0
    active: int = 0

    def after(self, source: Status | None, target: Status) -> Usage:
        """The usage once one environment moves from `source` (None: new) to `target`."""
        exists = int(target is not Status.DELETED) - int(source is not None and source is not Status.DELETED)
        active = int(target in ACTIVE) - int(source in ACTIVE)
        return Usage(self.environments + exists, self.active + active)


@dataclass(frozen=True, slots=True)
class Limits:
    max_environments: int
    max_active: int


def admit(usage: Usage, source: Status | None, target: Status, limits: Limits) -> Usage:
    """The owner's usage after the move, or QuotaExceeded when the move grows a counter past its limit.

    Only growth is refused, so an owner above a lowered limit can still stop and delete.
    """
    after = usage.after(source, target)
    if after.environments > usage.environments and after.environments > limits.max_environments:
        raise QuotaExceeded(
            f"you already have {limits.max_environments} environments; delete one first",
            {"limit": "max_environments_per_user", "value": limits.max_environments},
        )
    if after.active > usage.active and after.active > limits.max_active:
        raise QuotaExceeded(
            f"at most {limits.max_active} environments may run at once; stop one first",
            {"limit": "max_running_per_user", "value": limits.max_active},
        )
    return after
