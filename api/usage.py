"""What the caller has used and spent, metered from each environment's lifecycle: the route and
its response shapes."""

from __future__ import annotations

import re
from typing import Annotated

import azure.functions as func
from pydantic import Field, with_config
from typing_extensions import TypedDict

from api.contract import Operation, Query, Reply, route
from api.http import handle, owner_of, respond
from api.views import CLOSED, EnvironmentId, one_of
from shared import wiring
from shared.domain.environment import Environment, Status
from shared.domain.meter import MonthUsage
from shared.domain.metering import month_of
from shared.errors import ValidationFailed

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")  # ASCII: re's \d takes any script's digits


@with_config(CLOSED)
class UsageRow(TypedDict):
    """One environment's use in the month; `deleted` ones (retired included) are still billed."""

    environment_id: EnvironmentId
    name: str
    template: str
    size: str
    deleted: bool
    compute_seconds: float
    vcpu_seconds: float
    gb_seconds: float
    storage_gb_hours: float
    cost: Annotated[float, Field(description="USD.")]


@with_config(CLOSED)
class UsageTotals(TypedDict):
    compute_seconds: float
    vcpu_seconds: float
    gb_seconds: float
    storage_gb_hours: float
    cost: float


@with_config(CLOSED)
class MonthlyUsage(TypedDict):
    """The caller's use in one calendar month (UTC), per environment and in all."""

    month: Annotated[str, Field(pattern=MONTH.pattern, examples=["2026-12"])]  # as the query takes it
    currency: Annotated[str, one_of(["USD"], "Of every cost.")]
    environments: list[UsageRow]
    totals: UsageTotals


def figures(usage: MonthUsage) -> UsageTotals:
    return {
        "compute_seconds": round(usage.compute_seconds, 3),
        "vcpu_seconds": round(usage.vcpu_seconds, 3),
        "gb_seconds": round(usage.gb_seconds, 3),
        "storage_gb_hours": round(usage.storage_gb_hours, 6),
        "cost": round(usage.cost, 6),
    }


def monthly_usage_view(month: str, rows: list[tuple[Environment, MonthUsage]]) -> MonthlyUsage:
    listed: list[UsageRow] = []
    summed = MonthUsage()
    for env, used in rows:
        summed = summed.plus(used)
        listed.append(
            {
                "environment_id": env.id,
                "name": env.name,
                "template": env.template,
                "size": env.size,
                "deleted": env.status is Status.DELETED,
                **figures(used),
            }
        )
    return {"month": month, "currency": "USD", "environments": listed, "totals": figures(summed)}


@route(
    bp,
    Operation(
        "GET",
        "v1/usage",
        "getUsage",
        "What you used and spent in a month, per environment (deleted ones included)",
        "usage",
        {
            200: Reply(
                "Per environment and in all.",
                MonthlyUsage,
                example=lambda: monthly_usage_view("2026-12", []),
            )
        },
        query=(
            Query(
                "month",
                "YYYY-MM (UTC); this month when absent.",
                {"type": "string", "pattern": MONTH.pattern},
                "2026-12",
            ),
        ),
    ),
)
def api_usage(req: func.HttpRequest) -> func.HttpResponse:
    def usage() -> func.HttpResponse:
        owner = owner_of(req)
        month = req.params.get("month") or month_of(wiring.utcnow())
        if not MONTH.fullmatch(month):
            raise ValidationFailed("month must be YYYY-MM", [{"field": "month", "message": "YYYY-MM"}])
        return respond(200, monthly_usage_view(month, wiring.environments().usage(owner, month)))

    return handle(usage, req)
