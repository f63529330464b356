"""Everything the backend holds about one person, for them to take away (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain import metering
from shared.domain.environment import AuditEvent, Environment
from shared.domain.meter import MonthUsage
from shared.services.ports import Clock, EnvironmentRecords

ALL_EVENTS = 10_000  # an environment's whole trail (a busy one has a few hundred)


@dataclass(frozen=True, slots=True)
class Held:
    """One environment's record (deleted and retired ones included), its trail and its use."""

    environment: Environment
    events: list[AuditEvent]
    usage: dict[str, MonthUsage]


class MyData:
    def __init__(self, records: EnvironmentRecords, clock: Clock):
        self._records = records
        self._clock = clock

    def export(self, owner: str) -> list[Held]:
        now = self._clock()
        return [
            Held(env, self._records.events(owner, env.id, ALL_EVENTS), metering.to_date(env, now))
            for env in self._records.list(owner)
        ]
