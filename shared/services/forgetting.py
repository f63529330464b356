"""An owner's own account deletion (DELETE /me), step by step for its orchestration: every
environment deleted through its normal delete, then the anonymous usage totals kept, then every
row about the owner erased. Each step is idempotent and checks the records afresh, so a create
racing the deletion is deleted too before anything is erased."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain import lifecycle, metering
from shared.domain.environment import Actor, Environment, Status
from shared.domain.lifecycle import Command
from shared.domain.meter import MonthUsage
from shared.domain.resources import workspace_name
from shared.errors import InvalidState, NotFound
from shared.services.environments import EnvironmentService
from shared.services.ports import Clock, EnvironmentRecords, Erasure, WorkspaceStorage

REASON = "account deleted by its owner"


@dataclass(frozen=True, slots=True)
class Deletions:
    deleting: list[Environment]  # accepted just now: their delete orchestrations must run
    waiting: int  # busy (creating, starting, stopping, deleting): asked again once they settle


class Forgetting:
    def __init__(
        self,
        environments: EnvironmentService,
        records: EnvironmentRecords,
        erasure: Erasure,
        workspaces: WorkspaceStorage,
        clock: Clock,
    ) -> None:
        self._environments = environments
        self._records = records
        self._erasure = erasure
        self._workspaces = workspaces
        self._clock = clock

    def delete_all(self, owner: str) -> Deletions:
        """Ask for the delete of every environment that can take one now."""
        deleting, waiting = [], 0
        for env in self._records.list(owner):
            if env.status is Status.DELETED:
                continue
            if env.status in lifecycle.TRANSITIONAL:
                waiting += 1
                continue
            try:
                result = self._environments.command(owner, env.id, Command.DELETE, Actor.USER, reason=REASON)
            except (InvalidState, NotFound):  # it moved meanwhile: the next round sees where
                waiting += 1
                continue
            if result.accepted:
                deleting.append(result.environment)
        return Deletions(deleting, waiting)

    def keep_totals(self, owner: str, erasure_id: str) -> bool:
        """Keep the owner's usage, month by month, summed over all their environments, under
        `erasure_id` and nothing else. False (nothing kept) while an environment still lives."""
        envs = self._all_deleted(owner)
        if envs is None:
            return False
        now, totals = self._clock(), dict[str, MonthUsage]()
        for env in envs:
            for month, used in metering.to_date(env, now).items():
                totals[month] = totals.get(month, MonthUsage()).plus(used)
        for month, used in sorted(totals.items()):
            self._erasure.keep_anonymous_usage(erasure_id, month, used)
        return True

    def erase(self, owner: str) -> int | None:
        """Remove what is left: retired environments' workspaces (their snapshot repositories),
        then every row. None (nothing erased) while an environment still lives; else how many
        environments' records went."""
        envs = self._all_deleted(owner)
        if envs is None:
            return None
        for env in envs:  # already gone after a user's delete: done at once
            self._workspaces.delete(workspace_name(env.id))
        self._erasure.erase(owner, [env.id for env in envs])
        return len(envs)

    def _all_deleted(self, owner: str) -> list[Environment] | None:
        """Every record of the owner, or None while any of them still lives."""
        envs = self._records.list(owner)
        return None if any(env.status is not Status.DELETED for env in envs) else envs
