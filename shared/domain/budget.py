"""Monthly budgets: how much of it an owner has spent, and what that allows. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.domain import metering
from shared.domain.environment import Environment
from shared.domain.meter import MonthUsage
from shared.errors import BudgetExceeded

WARN_AT = 0.8  # the share of the budget at which the owner is told


@dataclass(frozen=True, slots=True)
class Spend:
    month: str
    spent: float  # USD this month so far, every environment of the owner's
    budget: float | None  # None: no budget

    @property
    def share(self) -> float:
        """Spent over budget; against a budget of 0, anything spent is all of it."""
        if self.budget is None:
            return 0.0
        if self.budget == 0:
            return 1.0 if self.spent > 0 else 0.0
        return self.spent / self.budget

    def allows(self, next_hour: float) -> bool:
        """Whether the month's spend plus the next hour of what is asked stays within budget."""
        return self.budget is None or self.spent + next_hour <= self.budget

    def admit(self, env: Environment) -> None:
        """BudgetExceeded unless an hour more of `env` stays within the budget."""
        hourly = env.estimated_cost_per_hour
        if not self.allows(hourly):
            raise BudgetExceeded(
                f"your monthly budget of USD {self.budget:.2f} would be passed: USD {self.spent:.2f} "
                f"spent in {self.month}, and an hour of this environment costs about USD {hourly:.2f}",
                {"month": self.month, "spent": round(self.spent, 4), "budget": self.budget},
            )


def spend(records: Iterable[Environment], now: datetime, budget: float | None) -> Spend:
    month = metering.month_of(now)
    spent = sum(metering.to_date(env, now).get(month, MonthUsage()).cost for env in records)
    return Spend(month, spent, budget)


def budget_of(records: Iterable[Environment], default: float | None) -> float | None:
    """The owner's budget: the one their token carried at the latest create or start, else the
    deployment's."""
    latest = max(records, key=lambda env: env.updated_at, default=None)
    if latest is not None and latest.monthly_budget is not None:
        return latest.monthly_budget
    return default
