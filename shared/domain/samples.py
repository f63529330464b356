"""Resource samples: what a workspace's activity agent measures once a minute (CPU, memory, the
working tree's size), kept for a day as a time series per environment. Plain data and the
series' arithmetic: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

WINDOW = timedelta(hours=24)  # what GET /metrics can show; the timers expire anything older
RESOLUTION = timedelta(minutes=1)  # one sample a minute: a second report in the same minute replaces it
MAX_MEMORY_MB = 1024 * 1024  # far past any size (ACI's largest group has 16 GB)
MAX_DISK_MB = 1024 * 1024 * 1024


class Sample(BaseModel):
    """One measurement. `cpu_percent` is of the environment's own cores (100: all of them busy)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    cpu_percent: float = Field(ge=0, le=100)
    memory_mb: float = Field(ge=0, le=MAX_MEMORY_MB)
    disk_mb: float | None = Field(default=None, ge=0, le=MAX_DISK_MB)  # None: not measured


class Point(BaseModel):
    """A sample where it sits in the series: the minute it was received in."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    sample: Sample


def minute_of(at: datetime) -> datetime:
    """The series' slot for a sample received at `at` (UTC, to the minute)."""
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def window_start(now: datetime, hours: int) -> datetime:
    """The first minute of the last `hours` hours (at most the WINDOW)."""
    span = min(timedelta(hours=hours), WINDOW)
    return minute_of(now - span) + RESOLUTION


def expired_before(now: datetime) -> datetime:
    """Samples older than this are past the window: the timers delete them."""
    return now - WINDOW
