"""An environment's resource samples (CPU, memory, the working tree's size), as its workspace
agent reported them once a minute: the route and its response shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import azure.functions as func
from pydantic import Field, with_config
from typing_extensions import TypedDict

from api.contract import Operation, Query, Reply, route
from api.http import count_param, handle, owner_of, respond
from api.views import CLOSED, EnvironmentId, iso
from shared import wiring
from shared.domain import samples
from shared.domain.samples import Point, Sample

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
WINDOW_HOURS = int(samples.WINDOW / timedelta(hours=1))


@with_config(CLOSED)
class MetricPoint(TypedDict):
    at: Annotated[str, Field(description="The minute the sample was received in (UTC).")]
    cpu_percent: Annotated[float, Field(description="Of the environment's own cores: 100 is all busy.")]
    memory_mb: Annotated[float, Field(description="Resident memory of the workspace's processes.")]
    disk_mb: Annotated[float | None, Field(description="The working tree's size; null: not measured.")]


@with_config(CLOSED)
class Metrics(TypedDict):
    """Oldest first; a minute with no report (stopped, or the agent silent) has no point."""

    environment_id: EnvironmentId
    resolution_seconds: int
    hours: int
    samples: list[MetricPoint]


def metrics_view(environment_id: str, hours: int, points: list[Point]) -> Metrics:
    return {
        "environment_id": environment_id,
        "resolution_seconds": int(samples.RESOLUTION.total_seconds()),
        "hours": hours,
        "samples": [
            {
                "at": iso(point.at) or "",
                "cpu_percent": point.sample.cpu_percent,
                "memory_mb": point.sample.memory_mb,
                "disk_mb": point.sample.disk_mb,
            }
            for point in points
        ],
    }


def _example() -> Metrics:
    at = datetime(2026, 12, 3, 9, 41, tzinfo=UTC)
    point = Point(at=at, sample=Sample(cpu_percent=37.5, memory_mb=812.4, disk_mb=1534.2))
    return metrics_view("env-3f2a9c1b7d4e5a60", 1, [point])


@route(
    bp,
    Operation(
        "GET",
        "v1/environments/{environment_id}/metrics",
        "getMetrics",
        "CPU, memory and disk of the last hours, a sample a minute",
        "environments",
        {200: Reply("The samples, oldest first.", Metrics, example=_example)},
        query=(
            Query(
                "hours",
                f"How far back, 1 to {WINDOW_HOURS} hours (the samples kept); {WINDOW_HOURS} when absent.",
                {"type": "integer", "minimum": 1, "maximum": WINDOW_HOURS},
                1,
            ),
        ),
    ),
)
def api_metrics(req: func.HttpRequest) -> func.HttpResponse:
    def metrics() -> func.HttpResponse:
        owner = owner_of(req)
        hours = count_param(req, "hours", WINDOW_HOURS) or WINDOW_HOURS
        env, points = wiring.metrics().series(owner, req.route_params["environment_id"], hours)
        return respond(200, metrics_view(env.id, hours, points))

    return handle(metrics, req)
