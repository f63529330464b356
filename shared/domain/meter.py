"""An environment's use in one month: what the record keeps, month by month (metering.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MonthUsage(BaseModel):
    """One environment's use in one calendar month (UTC)."""

    model_config = ConfigDict(frozen=True)

    compute_seconds: float = 0.0
    vcpu_seconds: float = 0.0
    gb_seconds: float = 0.0
    storage_gb_hours: float = 0.0
    cost: float = 0.0  # USD, at the prices of the region when it was accrued

    def plus(self, other: MonthUsage) -> MonthUsage:
        return MonthUsage(
            compute_seconds=self.compute_seconds + other.compute_seconds,
            vcpu_seconds=self.vcpu_seconds + other.vcpu_seconds,
            gb_seconds=self.gb_seconds + other.gb_seconds,
            storage_gb_hours=self.storage_gb_hours + other.storage_gb_hours,
            cost=self.cost + other.cost,
        )
