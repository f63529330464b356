"""What an environment's workspace agent reports once a minute: activity (which defers the idle
stop) and resource samples (CPU, memory, the working tree's size), and the owner's view of the
samples: the routes and their response shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import azure.functions as func
from pydantic import Field, with_config
from typing_extensions import TypedDict

from api.contract import Auth, Operation, Query, Reply, route
from api.environments import AGENT_TOKEN_PREFIX, ENVIRONMENT, TAG
from api.http import agent_environment, bearer_token, count_param, handle, owner_of, parse_body, respond
from api.views import CLOSED, EnvironmentId, StatusBody, iso
from shared import wiring
from shared.domain import samples
from shared.domain.requests import ActivityReport
from shared.domain.samples import Point, Sample
from shared.errors import ValidationFailed

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
        ENVIRONMENT + "/metrics",
        "getMetrics",
        "CPU, memory and disk of the last hours, a sample a minute",
        TAG,
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


@route(
    bp,
    Operation(
        "POST",
        ENVIRONMENT + "/activity",
        "recordActivity",
        "Say the environment is in use (defers the idle stop)",
        TAG,
        {200: Reply("Recorded.", StatusBody, example={"status": "ok"})},
        auth=Auth.USER_OR_AGENT,
        body=ActivityReport,
        body_required=False,
        body_example={"active": True, "sample": {"cpu_percent": 12.5, "memory_mb": 640.0, "disk_mb": 820.3}},
        refusals=(409,),
        description="A resource sample is the environment's own agent's to send (GET .../metrics "
        "shows them); `active: false` sends only the sample. So is `setup`: what the workspace "
        "setup could not do at this start (clone the repository, install the dotfiles), noted once "
        "in the audit trail and as the running environment's `status_reason`.",
    ),
)
def api_record_activity(req: func.HttpRequest) -> func.HttpResponse:
    """The owner's token, or the environment's own agent token (valid on this route only)."""

    def touch() -> func.HttpResponse:
        environment_id = req.route_params["environment_id"]
        token = bearer_token(req)
        # Authenticated before the body is looked at: a stranger learns nothing from a 400.
        if token is not None and token.startswith(AGENT_TOKEN_PREFIX):
            env = agent_environment(req, token, environment_id)
            wiring.metrics().report(env, _activity_report(req))
            return respond(200, {"status": "ok"})
        service = wiring.environments()
        env = service.get(owner_of(req), environment_id)  # another owner's: 404 whatever the body
        report = _activity_report(req)
        agent_only = [name for name in ("sample", "setup") if getattr(report, name)]
        if agent_only:
            raise ValidationFailed(
                "only the environment's own agent sends resource samples and setup reports",
                [{"field": name, "message": "agent token only"} for name in agent_only],
            )
        if report.active:
            service.touch(env)
        return respond(200, {"status": "ok"})

    return handle(touch, req)


def _activity_report(req: func.HttpRequest) -> ActivityReport:
    return parse_body(req, ActivityReport, optional=True)
